# cnnviz for a classroom: one container serves the app on port 8501.
#   docker build -t cnnviz .
#   docker run -d --name cnnviz -p 8501:8501 --memory 2g --cpus 2 cnnviz
# Then students open http://<this machine>:8501. Sizing, limits and replicas: README, "Serving a class".
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    # One BLAS thread per training step: the app's fair limiter already runs one step per CPU at a time,
    # and more threads per step would only make concurrent sessions fight over the same cores.
    OPENBLAS_NUM_THREADS=1 \
    OMP_NUM_THREADS=1 \
    MKL_NUM_THREADS=1

WORKDIR /app

# Dependencies first, so that code changes do not reinstall them.
COPY requirements.txt ./
RUN pip install -r requirements.txt

# The app, its package, the shipped data and models, and Streamlit's settings (upload limit, no telemetry).
COPY app.py ./
COPY cnnviz ./cnnviz
COPY assets ./assets
COPY .streamlit ./.streamlit

RUN useradd --create-home --uid 10001 cnnviz
USER cnnviz

EXPOSE 8501

HEALTHCHECK --interval=30s --timeout=5s --start-period=40s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health', timeout=4).read() == b'ok' else 1)"]

# 0.0.0.0: reachable from the students' machines (the committed .streamlit/config.toml binds 127.0.0.1 for
# a local run). Training slots (CNNVIZ_TRAIN_SLOTS), the idle pause (CNNVIZ_IDLE_PAUSE_MIN) and the cost
# limits (CNNVIZ_MAX_STEP_GFLOP, CNNVIZ_MAX_VAL_GFLOP) can be set with `docker run -e NAME=value`.
CMD ["streamlit", "run", "app.py", "--server.address", "0.0.0.0", "--server.port", "8501", \
     "--server.headless", "true", "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false"]
