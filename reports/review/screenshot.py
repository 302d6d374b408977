"""Screenshot of a Label Studio task pre-annotated by the student (run by make_screenshot.sh with
Label Studio's own virtual environment, where playwright is installed; the browser is Debian's
chromium). Logs in as the reviewer, opens the project's first task, waits for the labelling
panel and its pre-annotated regions, and saves a PNG."""

import argparse
import shutil

from playwright.sync_api import sync_playwright

ap = argparse.ArgumentParser()
ap.add_argument("--url", required=True)
ap.add_argument("--user", required=True)
ap.add_argument("--password", required=True)
ap.add_argument("--project", type=int, required=True)
ap.add_argument("--task", type=int, required=True)
ap.add_argument("--out", required=True)
a = ap.parse_args()

chromium = shutil.which("chromium") or shutil.which("chromium-browser")
with sync_playwright() as p:
    browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.goto(f"{a.url}/user/login/")
    page.fill("input[name=email]", a.user)
    page.fill("input[name=password]", a.password)
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")
    page.goto(f"{a.url}/projects/{a.project}/data?task={a.task}")
    page.wait_for_timeout(8000)  # the labelling panel loads the task and draws its regions
    page.screenshot(path=a.out, full_page=False)
    browser.close()
print(a.out)
