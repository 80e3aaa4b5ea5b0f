#!/usr/bin/env bash
# Install the peer synthesizers that benchmarks/run.py compares tabgen with, into the ACTIVE Python
# environment, which must already hold torch (the CPU build, 2.13.x) and tabgen:
#
#   python -m venv .venv-bench && .venv-bench/bin/pip install torch==2.13.0 && .venv-bench/bin/pip install -e .
#   source .venv-bench/bin/activate && bash benchmarks/install_peers.sh
#
# * SDV 2.0.0 (GaussianCopula, TVAE, CTGAN). Its requirement torch>=2.0 (via ctgan) is met by the
#   installed torch; the constraint below makes pip fail rather than replace it.
# * mostlyai-engine 2.7.3 (TabularARGN), installed with --no-deps: its metadata pins torchvision and
#   torchaudio builds that have no CPU wheel here, and pulls in the LLM stack (accelerate, peft, xgrammar,
#   vllm for GPUs) that the tabular model never imports. Its tabular path's own imports are listed
#   explicitly instead, including pydantic, which it imports but does not declare.
# * xgboost-cpu, never xgboost (the same module; the full wheel bundles CUDA).
#
# Set PYTHON to use another interpreter than `python`.
set -euo pipefail

PYTHON=${PYTHON:-python}
pip_install() { "$PYTHON" -m pip install --disable-pip-version-check "$@"; }

if ! "$PYTHON" -c "import torch" 2>/dev/null; then
    echo "torch is not installed in $("$PYTHON" -c 'import sys; print(sys.prefix)'): install torch==2.13.0 (CPU) first" >&2
    exit 1
fi
torch_version=$("$PYTHON" -c "import torch; print(torch.__version__.split('+')[0])")
echo "keeping the installed torch $("$PYTHON" -c 'import torch; print(torch.__version__)')"

constraints=$(mktemp)
trap 'rm -f "$constraints"' EXIT
# The installed torch may not change; xgboost (the CUDA-bundling wheel) may not come in.
printf 'torch==%s\n' "$torch_version" >"$constraints"

# 1. SDV and the CPU xgboost.
pip_install -c "$constraints" "sdv==2.0.0" "xgboost-cpu>=2.0"

# 2. mostlyai-engine without its declared requirements, then what its tabular path imports.
# pip then reports that mostlyai-engine "requires" accelerate, peft, torchaudio, torchvision, xgrammar
# and json-repair "which is not installed": expected, those serve its language models only.
pip_install -c "$constraints" --no-deps "mostlyai-engine==2.7.3"
pip_install -c "$constraints" \
    "transformers>=5.5.3" \
    "datasets>=3.0.0" \
    "opacus>=1.6.0" \
    "pydantic>=2.0" \
    "pyarrow>=16.0.0" \
    "psutil>=5.9.5,<6" \
    "joblib>=1.4.2" \
    "scikit-learn>=1.4.0" \
    "numpy>=2.0.0" \
    "pandas>=2.2.0"

# 3. Check: the torch is the one we started with, no full xgboost, and every peer fits and samples.
"$PYTHON" - "$torch_version" <<'EOF'
import importlib.metadata as md
import sys

import torch

expected = sys.argv[1]
assert torch.__version__.split("+")[0] == expected, f"torch changed to {torch.__version__}"
try:
    md.version("xgboost")
    sys.exit("the full 'xgboost' wheel got installed; uninstall it and keep xgboost-cpu")
except md.PackageNotFoundError:
    pass

import numpy as np
import pandas as pd
from mostlyai.engine import TabularARGN
from sdv.metadata import Metadata
from sdv.single_table import CTGANSynthesizer, GaussianCopulaSynthesizer, TVAESynthesizer

rng = np.random.default_rng(0)
df = pd.DataFrame({"x": rng.normal(size=200), "c": rng.choice(["a", "b", "c"], 200)})
metadata = Metadata.load_from_dict({"tables": {"t": {"columns": {"x": {"sdtype": "numerical"}, "c": {"sdtype": "categorical"}}}}})
for cls, kwargs in [(GaussianCopulaSynthesizer, {}), (TVAESynthesizer, {"epochs": 1}), (CTGANSynthesizer, {"epochs": 1})]:
    synthesizer = cls(metadata, **kwargs)
    synthesizer.fit({"t": df})
    assert len(synthesizer.sample(num_rows=10)["t"]) == 10, cls.__name__
model = TabularARGN(max_epochs=1, max_training_time=0.2, random_state=0,
                    tgt_encoding_types={"x": "TABULAR_NUMERIC_AUTO", "c": "TABULAR_CATEGORICAL"})
model.fit(df)
assert len(model.sample(n_samples=10)) == 10
model.close()
print(f"peers OK: sdv {md.version('sdv')}, mostlyai-engine {md.version('mostlyai-engine')}, "
      f"xgboost-cpu {md.version('xgboost-cpu')}, torch {torch.__version__}")
EOF
