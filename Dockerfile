# RevExOS production image: one image, three roles (web, worker, beat) chosen by the command.
FROM python:3.12-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    DJANGO_SETTINGS_MODULE=revexos.settings.production

# WeasyPrint renders invoices with Pango; fonts for Latin and common currency symbols.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 \
      fonts-dejavu-core fonts-liberation2 \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml README.md ./
COPY revexos ./revexos
COPY contracts ./contracts
COPY billing ./billing
COPY discounts ./discounts
COPY renewals ./renewals
COPY insights ./insights
COPY integrations ./integrations
RUN pip install .
COPY . .
# collectstatic needs settings but no database; a throwaway key satisfies the production check.
RUN SECRET_KEY=collectstatic-only-not-used-at-runtime-0123456789abcdefghijkl python manage.py collectstatic --noinput

RUN useradd --create-home --uid 10001 revexos && mkdir -p /app/var/media && chown -R revexos /app/var
USER revexos
EXPOSE 8000
CMD ["gunicorn", "revexos.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-"]
