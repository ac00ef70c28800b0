#!/usr/bin/env bash
# Makes the models Backdrop needs that are not committed. Idempotent: does nothing for a model that
# is already there and newer than the script that makes it (pass --force to make it again).
#
#   models/selfie/selfie.pt  the offline default model `selfie`: MediaPipe's selfie segmentation
#                            (Apache-2.0) converted to TorchScript by models/selfie/convert_selfie.py.
#                            Needs Debian's Python with torch (python3-torch) and pip (python3-pip),
#                            and the network once: pip fetches the mediapipe 0.10.14 wheel (35.7 MB)
#                            and the small `tflite` parser into $XDG_CACHE_HOME/backdrop/selfie.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${BACKDROP_PYTHON:-/usr/bin/python3}"
force=0
[[ "${1:-}" == "--force" ]] && force=1

selfie="$root/models/selfie/selfie.pt"
if [[ $force == 0 && -s "$selfie" && "$selfie" -nt "$root/models/selfie/convert_selfie.py" ]]; then
  echo "models/selfie/selfie.pt: present"
else
  "$python" "$root/models/selfie/convert_selfie.py" "$selfie"
fi

# The size the selfie model prefers travels in the file (TorchScript extra file
# backdrop/inference_size), so the element runs it at 256² whether it is named `selfie` or given as
# a path. Stamped here, idempotently, also into a selfie.pt made before this existed.
"$python" - "$selfie" <<'PY'
import sys, zipfile
import torch
path = sys.argv[1]
with zipfile.ZipFile(path) as archive:
    if any(name.endswith("/extra/backdrop/inference_size") for name in archive.namelist()):
        sys.exit(0)
module = torch.jit.load(path)
torch.jit.save(module, path + ".tmp", _extra_files={"backdrop/inference_size": "256x256"})
import os
os.replace(path + ".tmp", path)
print("models/selfie/selfie.pt: preferred inference size 256x256 recorded")
PY
