# The project's Airflow image: the official Airflow image plus the runtime lock
# (every transitive pin, the same file the tests install) and the library.
# The embedded stack's packages (moto, Flask: requirements/local.in) are not in it.
FROM apache/airflow:3.3.2-python3.11

# REQUIREMENTS=requirements-local.txt builds the image of compose's emulator and
# local-aws profiles (the same pins plus moto and Flask).
ARG REQUIREMENTS=requirements.txt
USER airflow
COPY --chown=airflow:root ${REQUIREMENTS} /opt/ssp-revenue/requirements.txt
RUN pip install --no-cache-dir -r /opt/ssp-revenue/requirements.txt
COPY --chown=airflow:root pyproject.toml /opt/ssp-revenue/pyproject.toml
COPY --chown=airflow:root include /opt/ssp-revenue/include
RUN pip install --no-cache-dir --no-deps -e /opt/ssp-revenue
COPY --chown=airflow:root dags /opt/airflow/dags
COPY --chown=airflow:root plugins /opt/airflow/plugins
# Bytecode for the project's own modules: a task process then compiles nothing at start-up.
RUN python -m compileall -q /opt/ssp-revenue/include /opt/airflow/dags /opt/airflow/plugins
ENV GX_ANALYTICS_ENABLED=False
