#!/usr/bin/env bash
# Create (once) a separate virtualenv holding a pinned LiteLLM proxy for the gateway test
# suite (tests/test_gateway_litellm.py, marker `gateway`). LiteLLM is NOT a dependency of
# llmobs: it lives in its own venv so the project's install stays lean. Prints the venv's
# python on success; exits non-zero (with pip's reason on stderr) when it cannot install.
#
#   scripts/litellm_env.sh                     # -> ~/.cache/llmobs/litellm-1.110.2/bin/python
#   LLMOBS_LITELLM_VENV=DIR scripts/litellm_env.sh
#
# litellm[proxy] 1.110 pulls its server code from a `litellm-proxy` package that not every
# index carries; the proxy code itself ships inside `litellm`, so the runtime packages the
# proxy imports are listed here instead of the extra.
set -euo pipefail
# Never let LiteLLM fetch its model price map from the internet (tests are offline).
export LITELLM_LOCAL_MODEL_COST_MAP=True
version="${LLMOBS_LITELLM_VERSION:-1.110.2}"
venv="${LLMOBS_LITELLM_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/llmobs/litellm-$version}"
if [ ! -f "$venv/.llmobs-ready" ]; then
  rm -rf "$venv"
  mkdir -p "$(dirname "$venv")"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check \
    "litellm==$version" \
    "uvicorn>=0.33,<1" "fastapi>=0.136.3,<1" "starlette>=1.0.1,<2" "backoff>=2.2.1,<3" \
    "orjson>=3.12,<4" "apscheduler>=3.11.2,<4" "pyjwt>=2.13,<3" "python-multipart>=0.0.27,<1" \
    "cryptography>=49,<51" "websockets>=15.0.1,<16" "rq>=2.7,<3" "gunicorn>=23,<24" \
    "uvloop>=0.22.1,<1" "pynacl>=1.6.2,<2" "fastapi-sso>=0.19,<1" "rich>=13.9.4,<14" \
    "semver>=3.0.4,<4" "expression>=5.6,<6" "restrictedpython>=8.5,<9" \
    "backports-zstd>=1,<2" "tomlkit>=0.13.3,<1" "litellm-enterprise>=0.1.83,<0.2" \
    "mcp>=2.3,<3" "httpx2>=2.10,<3" "azure-identity>=1.25.2,<2" \
    "azure-storage-blob>=12.28,<13" "polars>=1.38.1,<2" "soundfile>=0.12.1,<1" \
    "inquirerpy>=0.3.4,<1" "hiredis>=3,<4" >&2
  LITELLM_LOCAL_MODEL_COST_MAP=True "$venv/bin/python" -c "import litellm.proxy.proxy_cli" >&2
  touch "$venv/.llmobs-ready"
fi
echo "$venv/bin/python"
