"""The Dockerfile's rules, read with dockerfile-parse (the image itself is not built here:
no Docker engine): pinned base images, a multi-stage build whose final stage has no build
tools and runs as a non-root user, a HEALTHCHECK, no secrets baked in, the command picks
the service, and the Python dependencies are pyproject.toml's."""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import subprocess
import sys
import tomllib
from typing import Any

from dockerfile_parse import DockerfileParser

from tests.deploy.support import ROOT, local_services, secret_setting_names

BUILD_TOOLS = {"gcc", "g++", "make", "build-essential", "git", "cmake", "clang", "cargo", "rustc"}
SECRETISH = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL)", re.I)


def parser() -> DockerfileParser:
    return DockerfileParser(str(ROOT / "Dockerfile"))


def stages() -> list[list[dict[str, Any]]]:
    """The instructions of each stage, in order (comments left out)."""
    out: list[list[dict[str, Any]]] = []
    for ins in parser().structure:
        if ins["instruction"] == "FROM":
            out.append([])
        if out and ins["instruction"] != "COMMENT":
            out[-1].append(ins)
    return out


def final() -> list[dict[str, Any]]:
    return stages()[-1]


def values(stage: list[dict[str, Any]], instruction: str) -> list[str]:
    return [str(i["value"]) for i in stage if i["instruction"] == instruction]


def pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_base_images_are_pinned() -> None:
    images = parser().parent_images
    assert len(images) >= 2, "multi-stage"
    for image in images:
        if "@sha256:" in image:
            assert re.fullmatch(r".+@sha256:[0-9a-f]{64}", image), image
            continue
        name, _, tag = image.rpartition(":")
        assert name and re.fullmatch(r"\d+\.\d+\.\d+[-\w.]*", tag), f"{image}: an exact version"


def test_final_stage_runs_as_a_non_root_user_with_a_healthcheck() -> None:
    stage = final()
    users = values(stage, "USER")
    assert users, "the final stage sets USER"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0"), user
    assert user.isdigit(), "numeric, so Kubernetes can check runAsNonRoot"
    (healthcheck,) = values(stage, "HEALTHCHECK")
    assert "CMD" in healthcheck and "NONE" not in healthcheck
    cmd = json.loads(healthcheck[healthcheck.index("[") :])
    assert cmd[0] == "python"
    assert (ROOT / cmd[1].removeprefix("/app/")).exists(), cmd


def test_the_command_picks_the_service() -> None:
    stage = final()
    assert json.loads(values(stage, "ENTRYPOINT")[-1]) == ["python", "-m"]
    (default,) = json.loads(values(stage, "CMD")[-1])
    assert default in local_services().values()


def test_final_stage_has_no_build_tools() -> None:
    stage = final()
    runs = " ".join(values(stage, "RUN"))
    assert "pip install" not in runs, "dependencies come built from the build stage"
    for tool in BUILD_TOOLS:
        assert not re.search(rf"(^|\s){re.escape(tool)}(\s|$)", runs), tool
    assert not re.search(r"\S+-dev(\s|$)", runs), "no -dev packages"
    for pkg in ("ffmpeg", "espeak-ng"):
        assert re.search(rf"apt-get install[^&]*\s{pkg}(\s|$)", runs), pkg
    assert "rm -rf /var/lib/apt/lists/*" in runs
    copies_from_build = [c for c in values(stage, "COPY") if c.startswith("--from=")]
    assert copies_from_build == ["--from=build /app/.venv /app/.venv"]


def test_no_secrets_baked_in() -> None:
    secret_settings = secret_setting_names()
    for stage in stages():
        for ins in stage:
            if ins["instruction"] in ("ENV", "ARG"):
                for word in shlex.split(ins["value"]):
                    key = word.split("=", 1)[0]
                    assert key not in secret_settings, ins["content"]
                    assert not SECRETISH.search(key), ins["content"]
            if ins["instruction"] in ("COPY", "ADD"):
                assert ".env" not in ins["value"].split(), ins["content"]
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    assert "*" in ignore, "the context is what the Dockerfile copies, nothing else"
    assert "**/.env" in ignore


def test_copied_files_exist_and_are_in_the_build_context() -> None:
    allowed = [
        line[1:].rstrip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    ]
    for stage in stages():
        for value in values(stage, "COPY"):
            if value.startswith("--from="):
                continue
            *sources, _dest = value.split()
            for src in sources:
                assert (ROOT / src).exists(), src
                assert any(fnmatch.fnmatch(src, a) or src == a for a in allowed), src


def test_python_dependencies_are_pyprojects() -> None:
    (build, *_rest) = stages()
    deps = pyproject()["project"]["dependencies"]
    assert any("pyproject.toml" in c for c in values(build, "COPY"))
    runs = values(build, "RUN")
    (reader,) = [r for r in runs if "tomllib" in r]
    code = re.search(r'python -c "(.*?)" > (\S+)', reader)
    assert code, reader
    out = subprocess.run(
        [sys.executable, "-c", code.group(1).replace('\\"', '"')],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert out.stdout.split("\n")[:-1] == deps, "the requirements are pyproject's list"
    assert f"pip install -r {code.group(2)}" in reader
    installs = [r for r in runs if "pip install" in r]
    for run in installs:
        for cmd in run.split("&&"):
            if "pip install" not in cmd:
                continue
            args = shlex.split(cmd.split("pip install", 1)[1])
            names = [a for a in args if not a.startswith("-") and a != code.group(2)]
            # Nothing but the project itself (".", without its dependencies: they came above).
            assert names in ([], ["."]), cmd
            if names == ["."]:
                assert "--no-deps" in args, cmd
