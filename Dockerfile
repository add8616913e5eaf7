# The project's Airflow image: the official Airflow image plus our pinned
# requirements and the library installed from include/.
FROM apache/airflow:3.3.2-python3.11

USER airflow
COPY --chown=airflow:root requirements.txt /opt/ssp-revenue/requirements.txt
RUN pip install --no-cache-dir -r /opt/ssp-revenue/requirements.txt
COPY --chown=airflow:root pyproject.toml /opt/ssp-revenue/pyproject.toml
COPY --chown=airflow:root include /opt/ssp-revenue/include
RUN pip install --no-cache-dir --no-deps -e /opt/ssp-revenue
COPY --chown=airflow:root dags /opt/airflow/dags
COPY --chown=airflow:root plugins /opt/airflow/plugins
ENV GX_ANALYTICS_ENABLED=False
