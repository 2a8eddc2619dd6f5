"""environment.yml (for conda users) lists exactly what pyproject.toml asks for."""
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _norm(req: str) -> str:
    name, rest = re.match(r"\s*([A-Za-z0-9_.\-]+)\s*(.*)", req).groups()
    return re.sub(r"[-_.]+", "-", name).lower() + rest.replace(" ", "")


def test_environment_yml_agrees_with_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {_norm(r) for r in project["dependencies"]}
    for extra in ("dev", "lab", "scale"):
        wanted |= {_norm(r) for r in project["optional-dependencies"][extra]}
    lines = (ROOT / "environment.yml").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "- pip:")
    pip_reqs = {_norm(line.strip()[2:]) for line in lines[start + 1:] if line.strip().startswith("- ")}
    assert pip_reqs == wanted, f"only in environment.yml: {pip_reqs - wanted}; only in pyproject: {wanted - pip_reqs}"


def test_makefile_pins_the_cpu_torch_that_pyproject_allows():
    make = (ROOT / "Makefile").read_text()
    spec = re.search(r"TORCH_SPEC\s*\?=\s*torch==([\d.]+)", make).group(1)
    floor = re.search(r'"torch>=([\d.]+)"', (ROOT / "pyproject.toml").read_text()).group(1)
    as_tuple = lambda v: tuple(int(x) for x in v.split("."))  # noqa: E731
    assert as_tuple(spec) >= as_tuple(floor)
    assert "download.pytorch.org/whl/cpu" in make  # the CPU build, explicitly


def test_ci_calls_the_readme_test_command():
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    assert "make test" in (ROOT / "README.md").read_text()
