"""`kefu doctor [--json]`: what the machine has, what is wrong, and the runtime fixes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from kefu.stack import doctor

KEFU = str(Path(sys.executable).parent / "kefu")


def run_doctor(**env: str) -> tuple:
    done = subprocess.run(
        [KEFU, "doctor", "--json"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=180,
    )
    return done.returncode, json.loads(done.stdout)


def test_doctor_json_lists_every_runtime_fix_installed_and_verified():
    code, report = run_doctor()
    assert report["rasa_version"] == "3.6.21"
    fixes = report["runtime_fixes"]
    assert len(fixes) == 7
    assert all({"name", "installed", "verified"} <= set(f) for f in fixes)
    assert all(f["installed"] and f["verified"] for f in fixes)
    names = {c["name"] for c in report["checks"]}
    assert {"python", "rasa", "model", "policy", "store", "postgresql", "redis"} <= names
    assert code == (0 if report["ok"] else 1)


def test_doctor_reports_fixes_turned_off_and_an_unknown_selection():
    _, report = run_doctor(KEFU_RUNTIME_FIXES="none")
    assert not any(f["installed"] for f in report["runtime_fixes"])
    assert all(f["verified"] for f in report["runtime_fixes"])
    code, report = run_doctor(KEFU_RUNTIME_FIXES="warp_drive")
    assert code == 1 and not report["ok"]
    [fixes] = [c for c in report["checks"] if c["name"] == "runtime fixes"]
    assert fixes["status"] == "fail" and "warp_drive" in fixes["detail"]


def test_a_model_older_than_its_inputs_is_reported(tmp_path):
    (tmp_path / "models").mkdir()
    (tmp_path / "data").mkdir()
    model = tmp_path / "models" / "kefu.tar.gz"
    model.write_bytes(b"x")
    assert doctor.check_model(model, tmp_path).status == "ok"
    time.sleep(0.01)
    later = time.time() + 5
    (tmp_path / "data" / "nlu.yml").write_text("nlu: []\n")
    os.utime(tmp_path / "data" / "nlu.yml", (later, later))
    stale = doctor.check_model(model, tmp_path)
    assert stale.status == "fail" and "data/nlu.yml" in stale.detail
    assert doctor.check_model(tmp_path / "models" / "none.tar.gz", tmp_path).status == "fail"


def test_doctor_checks_the_same_model_inputs_as_the_makefile():
    """`make train` and `kefu doctor` must agree on what makes the model stale."""
    makefile = (doctor.ROOT / "Makefile").read_text(encoding="utf-8")
    start = makefile.index("MODEL_INPUTS :=")
    block = makefile[start : makefile.index("\n\n", start)].replace("\\\n", " ")
    files = [w for w in block.split(":=", 1)[1].split("$(shell")[0].split()]
    assert sorted(files) == sorted(doctor.MODEL_INPUT_FILES)
    found = block.split("find", 1)[1].split("-type")[0].split()
    assert sorted(found) == sorted(doctor.MODEL_INPUT_DIRS)
