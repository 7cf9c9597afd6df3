# Two images from one file. `app`: the code location and Dagster (webserver, daemon, user code):
# Python only, since Spark runs elsewhere and is reached over Spark Connect. `spark`: the Spark
# Connect server: Java 17 plus this package, because its Python workers run the loads' code.
FROM python:3.11-slim-bookworm AS app
WORKDIR /opt/dagster/app
COPY pyproject.toml README.md ./
COPY sales_assets ./sales_assets
RUN pip install --no-cache-dir .
COPY docker ./docker
RUN mkdir -p /opt/dagster/home /data && cp docker/dagster.yaml /opt/dagster/home/dagster.yaml

FROM app AS spark
RUN apt-get update \
 && apt-get install -y --no-install-recommends openjdk-17-jre-headless procps \
 && rm -rf /var/lib/apt/lists/*
EXPOSE 15002 4040
