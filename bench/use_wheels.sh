# Sourced by the scripts run on a lent GPU machine: install the wheels in .whl/ (bench/gpu_wheels.sh
# fetches them) into /tmp/site and put it, and the repository, on PYTHONPATH. $1: the install log.
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    >"$1" 2>&1 || { echo "wheel install failed:"; tail -5 "$1"; }
  export PYTHONPATH="/tmp/site:$PWD"
else
  export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
fi
