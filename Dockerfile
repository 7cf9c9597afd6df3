# The code location image: Java 17 for Spark, the package, Dagster's instance config.
FROM python:3.11-slim-bookworm
RUN apt-get update \
 && apt-get install -y --no-install-recommends openjdk-17-jre-headless procps \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/dagster/app
COPY pyproject.toml README.md ./
COPY sales_assets ./sales_assets
RUN pip install --no-cache-dir .
COPY docker ./docker
RUN mkdir -p /opt/dagster/home /data && cp docker/dagster.yaml /opt/dagster/home/dagster.yaml
