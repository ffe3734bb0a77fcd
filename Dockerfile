# The session backend: `python -m service` on 0.0.0.0:$PORT as an unprivileged user.
# Build: docker build -t strands-session-backend:latest .
# The service finds sql/ and migrations/ next to the `service` package, so the source tree
# lives in /app (on PYTHONPATH) and only the dependencies are installed into the venv.

FROM python:3.11-slim-bookworm AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /build
COPY pyproject.toml ./
# Dependencies only, read from pyproject.toml: this layer is rebuilt only when they change.
# The server imports none of strands-cli's dependencies (strands-cli and the Strands client,
# with strands-agents, are the ./client distribution, not installed here);
# the venv's pip and setuptools go once the install is done.
RUN python -c "import re, tomllib; server_only = lambda d: re.split(r'[^A-Za-z0-9_.-]', d)[0].lower() not in {'click', 'rich', 'httpx'}; deps = tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']; open('requirements.txt', 'w').write('\n'.join(filter(server_only, deps)) + '\n')" \
    && python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir -r requirements.txt \
    && /opt/venv/bin/pip uninstall --yes pip setuptools


FROM python:3.11-slim-bookworm

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOST=0.0.0.0 \
    PORT=8000 \
    WORKERS=1 \
    LOG_FORMAT=json

# No installer in the runtime image: the base's own pip, setuptools and wheel go too.
RUN python -c "import glob, importlib.util, os, shutil; [shutil.rmtree(p) for name in ('pip', 'setuptools', 'wheel') if (spec := importlib.util.find_spec(name)) for p in [os.path.dirname(spec.origin), *glob.glob(os.path.dirname(os.path.dirname(spec.origin)) + '/' + name + '-*-info')]]" \
    && rm -f /usr/local/bin/pip /usr/local/bin/pip3* /usr/local/bin/wheel \
    && groupadd --system --gid 10001 app \
    && useradd --system --no-log-init --uid 10001 --gid app --home-dir /app --shell /usr/sbin/nologin app

COPY --from=builder /opt/venv /opt/venv

WORKDIR /app
COPY pyproject.toml ./
COPY sql ./sql
COPY migrations ./migrations
COPY service ./service
# Compiled once here: a read-only root file system (Kubernetes) could not cache them at start.
RUN python -m compileall -q service

USER 10001:10001
EXPOSE 8000

HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health/ready' % os.environ.get('PORT', '8000'), timeout=4)"]

CMD ["python", "-m", "service"]
