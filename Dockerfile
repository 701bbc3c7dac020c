# One image for web, worker and beat.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    TF_ENABLE_ONEDNN_OPTS=0 \
    DATA_DIR=/data

WORKDIR /app
RUN apt-get update \
    && apt-get install -y --no-install-recommends libpq5 curl \
    && rm -rf /var/lib/apt/lists/*
COPY requirements.txt .
RUN pip install -r requirements.txt
COPY . .
RUN useradd --create-home --uid 1000 app \
    && mkdir -p /data \
    && chown -R app:app /data /app \
    && DEBUG=1 python manage.py collectstatic --noinput
USER app
EXPOSE 8000
# HTTP and the live stream (WebSocket /ws/stream) from one ASGI server: gunicorn with uvicorn workers.
CMD ["gunicorn", "tradingdash.asgi:application", "--config", "tradingdash/gunicorn.conf.py"]
