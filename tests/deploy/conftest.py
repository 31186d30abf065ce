"""Fixtures of the deploy tier: kustomize (built once through the Go module proxy into the
stack's cache by scripts/kustomize.py) and every overlay rendered with it."""

from __future__ import annotations

from types import ModuleType

import pytest

from tests.deploy.support import K8S, OVERLAYS, ROOT, Doc, load_script, yaml_docs


@pytest.fixture(scope="session")
def kustomize_script() -> ModuleType:
    return load_script(ROOT / "scripts" / "kustomize.py", "tapedeck_scripts_kustomize")


@pytest.fixture(scope="session")
def rendered(kustomize_script: ModuleType) -> dict[str, list[Doc]]:
    """overlay name -> its objects, as `kustomize build deploy/k8s/overlays/NAME` gives them.
    A kustomize that cannot be built, or an overlay that does not render, fails the test
    with the reason."""
    ks = kustomize_script
    try:
        ks.kustomize_bin()
    except ks.stack.StackError as exc:
        pytest.fail(f"kustomize {ks.KUSTOMIZE_VERSION} could not be built: {exc}")
    out: dict[str, list[Doc]] = {}
    for overlay in OVERLAYS:
        try:
            out[overlay] = yaml_docs(ks.build(K8S / "overlays" / overlay))
        except ks.stack.StackError as exc:
            pytest.fail(str(exc))
    return out
