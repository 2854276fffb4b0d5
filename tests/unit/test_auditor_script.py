"""The proof-checking script of docs/INTEGRITY.md, run exactly as printed there, on a real
proof: an auditor without this package gets the same answer as `audit verify-proof`."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from audit_stack import verify as checks

from .test_verify import KEY, _chain, _record

DOCS = Path(__file__).resolve().parents[2] / "docs" / "INTEGRITY.md"


def _script() -> str:
    text = DOCS.read_text()
    match = re.search(
        r"<!-- auditor-script:start -->\n```python\n(.*?)```\n<!-- auditor-script:end -->",
        text,
        re.DOTALL,
    )
    assert match, "docs/INTEGRITY.md lost its auditor script"
    return match.group(1)


def _run(tmp_path: Path, proof: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    script, proof_file, key_file = (tmp_path / n for n in ("check.py", "proof.json", "key.pem"))
    script.write_text(_script())
    proof_file.write_text(json.dumps(proof))
    key_file.write_bytes(checks.public_key_pem(KEY.public_key()))
    return subprocess.run(
        [sys.executable, "-I", str(script), str(proof_file), str(key_file)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_documented_script_accepts_a_proof_and_rejects_each_kind_of_tampering(
    tmp_path: Path,
) -> None:
    records = [_record(name) for name in "abcde"]
    digests = _chain(records[:2], records[2:])
    proof = checks.inclusion_proof(records[3], digests)
    assert checks.check_inclusion_proof(proof, KEY.public_key())

    accepted = _run(tmp_path, proof)
    assert accepted.returncode == 0, accepted.stderr
    assert accepted.stdout.startswith(f"OK: {proof['record']['event_key']} is record ")

    content = json.loads(json.dumps(proof))
    content["record"]["canonical_content"] += " "
    moved = json.loads(json.dumps(proof))
    moved["leaf_index"] = 0
    resigned = json.loads(json.dumps(proof))
    resigned["checkpoint"]["checkpoint"] = resigned["checkpoint"]["checkpoint"].replace(
        '"tree_size":5', '"tree_size":6'
    )
    for tampered, reason in (
        (content, "the content does not match its record hash"),
        (moved, "the audit path does not lead to the checkpoint's root"),
        (resigned, "the checkpoint's signature does not verify"),
    ):
        rejected = _run(tmp_path, tampered)
        assert rejected.returncode == 1
        assert rejected.stderr.strip() == f"FAILED: {reason}"
