"""checkov on the rendered manifests, the GitOps application and the Dockerfiles, and hadolint
on the Dockerfiles: no failed check. A skipped check must be one listed here, and carry its
reason beside it (a `checkov.io/skipN` annotation whose text says why)."""

from __future__ import annotations

import json

from tests.manifests.conftest import APPLICATION, CONTAINERS, REPO, TARGETS, run, tool

#: (check, resource) -> why; the manifests carry the same reason in their skip annotation.
ALLOWED_SKIPS = {
    ("CKV_K8S_43", "Deployment.relforge.tier2-tgi"):
        "TGI 3.3.4's digest could not be verified from this project's machine",
}
DOCKERFILES = sorted(CONTAINERS.glob("Dockerfile.*"))


def _checkov(*args) -> dict:
    proc = run(tool("checkov"), *args, "--skip-download", "--output", "json", "--compact",
               timeout=600, cwd=REPO)
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError:
        raise AssertionError(f"checkov printed no report (exit {proc.returncode}):\n{proc.stderr[-3000:]}") from None
    assert isinstance(report, dict), "one framework, one report"
    return report


def _failures(report: dict) -> list[str]:
    return [f"{c['check_id']} {c['resource']} ({c['file_path']}): {c['check_name']}"
            for c in report["results"]["failed_checks"]]


def test_checkov_passes_the_rendered_manifests(rendered):
    files = [arg for t in TARGETS for arg in ("--file", rendered[t][0])] + ["--file", APPLICATION]
    report = _checkov(*files, "--framework", "kubernetes")
    assert report["summary"]["parsing_errors"] == 0
    assert _failures(report) == []
    assert report["summary"]["passed"] >= 500  # about 190 checks on each target
    skipped = report["results"]["skipped_checks"]
    assert skipped, "the TGI digest exception is expected to be reported as skipped"
    for check in skipped:
        assert (check["check_id"], check["resource"]) in ALLOWED_SKIPS, check["check_id"]
        assert len(check["check_result"].get("suppress_comment", "")) > 20, "a skip without a reason"


def test_checkov_passes_the_dockerfiles():
    files = [arg for f in DOCKERFILES for arg in ("--file", f)]
    report = _checkov(*files, "--framework", "dockerfile")
    assert [f.name for f in DOCKERFILES] == ["Dockerfile.cpu", "Dockerfile.gpu"]
    assert _failures(report) == []
    assert report["results"]["skipped_checks"] == []
    assert report["summary"]["passed"] >= 100


def test_hadolint_is_clean():
    proc = run(tool("hadolint"), "--no-color", *DOCKERFILES)
    assert (proc.returncode, proc.stdout + proc.stderr) == (0, "")
