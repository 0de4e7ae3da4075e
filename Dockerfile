# payflow workers; docker-compose.yml runs one container per stage (`payflow run <stage>`).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml ./
COPY contracts ./contracts
COPY infra ./infra
COPY workers ./workers
RUN pip install . \
 && useradd --system --no-create-home payflow

# Workers need no privileges; Kafka/Postgres/Redis are separate containers.
USER payflow
ENTRYPOINT ["payflow"]
CMD ["--help"]
