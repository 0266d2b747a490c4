from __future__ import annotations

import pytest

from cicd_orchestrator.constants import FailureCategory
from cicd_orchestrator.git import checkout
from cicd_orchestrator.repair.dependency import MissingDependencyFixer, distribution_for, importer
from cicd_orchestrator.repair.python_deps.versions import installed_version

WORKFLOW = """name: CI
on: [push]
jobs:
  test:
    runs-on: ubuntu-latest
    steps:
      - run: pip install -r requirements/base.txt
"""


@pytest.mark.parametrize(
    "module,dist",
    [
        ("yaml", "PyYAML"),
        ("PIL.Image", "Pillow"),
        ("cv2", "opencv-python"),
        ("sklearn.linear_model", "scikit-learn"),
        ("jsonschema", "jsonschema"),
        ("os", None),
    ],
)
def test_distribution_names(module, dist):
    assert distribution_for(module) == dist


def test_missing_module_goes_to_the_requirements_file_the_workflow_installs(repo, make_failure):
    sha = repo.commit(
        {
            ".github/workflows/ci.yml": WORKFLOW,
            "requirements/base.txt": "requests==2.0\n",
            "requirements.txt": "# unused\n",
        },
        "init",
    )
    ctx = repo.context([make_failure(FailureCategory.BUILD, "add-requirement", module="yaml")], sha)
    ctx.workflow_path = ".github/workflows/ci.yml"
    result = MissingDependencyFixer().propose(ctx)
    repair = result.repairs[0]
    assert repair.files == ["requirements/base.txt"]
    assert "+PyYAML==" in repair.patch  # pinned like its neighbours


def test_missing_module_goes_to_pyproject_without_requirements(repo, make_failure):
    sha = repo.commit(
        {
            "pyproject.toml": '[project]\nname = "x"\ndependencies = ["requests"]\n'
            "\n[tool.ruff]\nline-length = 100\n"
        },
        "init",
    )
    ctx = repo.context([make_failure(FailureCategory.BUILD, "add-requirement", module="bs4")], sha)
    repair = MissingDependencyFixer().propose(ctx).repairs[0]
    with checkout(repo.path, sha) as ws:
        assert ws.apply(repair.patch)
        import tomllib

        data = tomllib.loads((ws.path / "pyproject.toml").read_text())
    assert data["project"]["dependencies"] == ["requests", "beautifulsoup4"]
    assert data["tool"]["ruff"]["line-length"] == 100


def test_declared_requirement_is_not_added_twice(repo, make_failure):
    sha = repo.commit({"requirements.txt": "pyyaml>=6\n"}, "init")
    ctx = repo.context([make_failure(FailureCategory.BUILD, "add-requirement", module="yaml")], sha)
    result = MissingDependencyFixer().propose(ctx)
    assert not result.repairs and "already declared" in result.unrepaired[0]


# --------------------------------------------------------------------------- layouts
MARSHMALLOW_TRACE = (
    "Traceback (most recent call last):",
    '  File "/home/runner/work/shop/shop/src/shop/schemas.py", line 3, in <module>',
    "    import marshmallow",
    "ModuleNotFoundError: No module named 'marshmallow'",
)
TEST_TRACE = (
    "ImportError while importing test module '/home/runner/work/shop/shop/tests/test_api.py'.",
    "tests/test_api.py:4: in <module>",
    "    import responses",
    "E   ModuleNotFoundError: No module named 'responses'",
)
UV_LOCK = """version = 1
requires-python = ">=3.11"

[[package]]
name = "marshmallow"
version = "3.21.1"
source = { registry = "https://pypi.org/simple" }

[[package]]
name = "responses"
version = "0.25.0"
source = { registry = "https://pypi.org/simple" }
"""
SHOP_SOURCE = {
    "src/shop/__init__.py": "",
    "src/shop/schemas.py": "import marshmallow\n",
    "tests/test_api.py": "import responses\n",
}


def _fix(repo, make_failure, tree, module, trace=(), workflow=None):
    """The fixer's result on a repository of ``tree`` for ``module``, and the commit."""
    if workflow is not None:
        tree = {**tree, ".github/workflows/ci.yml": workflow}
    sha = repo.commit({**SHOP_SOURCE, **tree}, "init")
    failure = make_failure(FailureCategory.BUILD, "add-requirement", module=module)
    failure.pattern = "python-module-not-found"
    failure.evidence = list(trace)
    ctx = repo.context([failure], sha)
    if workflow is not None:
        ctx.workflow_path = ".github/workflows/ci.yml"
    return MissingDependencyFixer().propose(ctx), sha


def _text(repo, sha, result, path):
    [repair] = result.repairs
    return repo.applied_bytes(sha, repair.patch, path).decode()


PEP621 = """[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "shop"
version = "1.4.0"
# runtime dependencies: keep them loose
dependencies = [
    "requests>=2.31",  # http client
    "click>=8.1",
]

[project.optional-dependencies]
test = [
    "pytest>=8",
]
"""


def test_pep621_runtime_import_in_the_style_and_version_of_the_lock(repo, make_failure):
    tree = {"pyproject.toml": PEP621, "uv.lock": UV_LOCK}
    result, sha = _fix(repo, make_failure, tree, "marshmallow", MARSHMALLOW_TRACE)
    assert _text(repo, sha, result, "pyproject.toml") == PEP621.replace(
        '    "click>=8.1",\n', '    "click>=8.1",\n    "marshmallow>=3.21.1",\n'
    )
    [repair] = result.repairs
    assert repair.files == ["pyproject.toml"]  # the lock is left as it is ...
    assert "run `uv lock`" in repair.description  # ... and the pull request says so
    assert any("uv.lock" in note for note in repair.notes)


def test_pep621_test_import_goes_to_the_test_extra(repo, make_failure):
    tree = {"pyproject.toml": PEP621, "uv.lock": UV_LOCK}
    result, sha = _fix(repo, make_failure, tree, "responses", TEST_TRACE)
    assert _text(repo, sha, result, "pyproject.toml") == PEP621.replace(
        '    "pytest>=8",\n', '    "pytest>=8",\n    "responses>=0.25.0",\n'
    )


def test_pep735_dependency_group_takes_a_test_import(repo, make_failure):
    text = (
        '[project]\nname = "shop"\ndependencies = ["requests==2.31.0"]\n\n'
        '[dependency-groups]\ndev = ["pytest==8.2.0", "ruff==0.4.4"]\n'
    )
    tree = {"pyproject.toml": text, "uv.lock": UV_LOCK}
    result, sha = _fix(repo, make_failure, tree, "responses", TEST_TRACE)
    assert _text(repo, sha, result, "pyproject.toml") == text.replace(
        '"ruff==0.4.4"]', '"ruff==0.4.4", "responses==0.25.0"]'
    )


POETRY = """[tool.poetry]
name = "shop"
version = "0.3.0"
description = "The shop"
authors = ["Shop Team <team@shop.example>"]

[tool.poetry.dependencies]
python = "^3.11"
requests = "^2.31.0"
pydantic = { version = "^2.7", extras = ["email"] }

[tool.poetry.group.dev.dependencies]
pytest = "^8.2"

[build-system]
requires = ["poetry-core"]
build-backend = "poetry.core.masonry.api"
"""
POETRY_LOCK = """[[package]]
name = "marshmallow"
version = "3.21.1"
description = "A lightweight library for converting complex datatypes"
optional = false
python-versions = ">=3.8"

[metadata]
lock-version = "2.0"
"""


def test_poetry_runtime_import_with_a_caret_and_the_lock_command(repo, make_failure):
    tree = {"pyproject.toml": POETRY, "poetry.lock": POETRY_LOCK}
    result, sha = _fix(repo, make_failure, tree, "marshmallow", MARSHMALLOW_TRACE)
    assert _text(repo, sha, result, "pyproject.toml") == POETRY.replace(
        'extras = ["email"] }\n', 'extras = ["email"] }\nmarshmallow = "^3.21.1"\n'
    )
    assert "run `poetry lock --no-update`" in result.repairs[0].description


def test_poetry_test_import_goes_to_the_dev_group(repo, make_failure):
    tree = {"pyproject.toml": POETRY, "poetry.lock": POETRY_LOCK}
    result, sha = _fix(repo, make_failure, tree, "responses", TEST_TRACE)
    # no version known (not locked, not installed for the runner): any version
    assert _text(repo, sha, result, "pyproject.toml") == POETRY.replace(
        'pytest = "^8.2"\n', 'pytest = "^8.2"\nresponses = "*"\n'
    )


def test_pdm_dev_dependencies_take_a_test_import(repo, make_failure):
    text = (
        '[project]\nname = "shop"\ndependencies = [\n  "requests",\n]\n\n'
        '[tool.pdm.dev-dependencies]\ntest = [\n  "pytest",\n]\nlint = [\n  "ruff",\n]\n'
    )
    tree = {"pyproject.toml": text, "pdm.lock": "# pdm lock\n[metadata]\ngroups = []\n"}
    result, sha = _fix(repo, make_failure, tree, "responses", TEST_TRACE)
    assert _text(repo, sha, result, "pyproject.toml") == text.replace(
        '  "pytest",\n', '  "pytest",\n  "responses",\n'
    )
    assert "run `pdm lock`" in result.repairs[0].description


def test_hatch_default_environment_takes_a_test_import(repo, make_failure):
    text = (
        '[project]\nname = "shop"\ndependencies = ["requests"]\n\n'
        '[tool.hatch.envs.default]\ndependencies = [\n  "coverage[toml]",\n  "pytest",\n]\n'
        '[tool.hatch.envs.default.scripts]\ntest = "pytest {args:tests}"\n'
    )
    result, sha = _fix(repo, make_failure, {"pyproject.toml": text}, "responses", TEST_TRACE)
    assert _text(repo, sha, result, "pyproject.toml") == text.replace(
        '  "pytest",\n', '  "pytest",\n  "responses",\n'
    )


SETUP_CFG = """[metadata]
name = shop
version = 1.0

[options]
packages = find:
python_requires = >=3.9
install_requires =
    requests>=2.25
    click>=7.0

[options.extras_require]
testing =
    pytest>=6

[flake8]
max-line-length = 100
"""


def test_setup_cfg_install_requires_gets_one_line(repo, make_failure):
    tree = {"setup.cfg": SETUP_CFG, "setup.py": "from setuptools import setup\nsetup()\n"}
    result, sha = _fix(repo, make_failure, tree, "marshmallow", MARSHMALLOW_TRACE)
    assert _text(repo, sha, result, "setup.cfg") == SETUP_CFG.replace(
        "    click>=7.0\n", "    click>=7.0\n    marshmallow\n"
    )


def test_setup_cfg_test_import_goes_to_the_testing_extra(repo, make_failure):
    result, sha = _fix(repo, make_failure, {"setup.cfg": SETUP_CFG}, "responses", TEST_TRACE)
    assert _text(repo, sha, result, "setup.cfg") == SETUP_CFG.replace(
        "    pytest>=6\n", "    pytest>=6\n    responses\n"
    )


def test_setup_cfg_reading_a_file_sends_the_requirement_there(repo, make_failure):
    cfg = "[metadata]\nname = shop\n\n[options]\ninstall_requires = file: requirements/base.txt\n"
    tree = {"setup.cfg": cfg, "requirements/base.txt": "requests\n"}
    result, sha = _fix(repo, make_failure, tree, "marshmallow", MARSHMALLOW_TRACE)
    assert _text(repo, sha, result, "requirements/base.txt") == "requests\nmarshmallow\n"


SETUP_PY = """import setuptools

setuptools.setup(
    name='shop',
    version='1.0',
    packages=setuptools.find_packages('src'),
    install_requires=[
        'requests>=2.25',
        'click>=7.0',  # the command line
    ],
    extras_require={
        'test': ['pytest>=6'],
    },
)
"""


def test_setup_py_list_literal_in_its_quoting_and_indentation(repo, make_failure):
    tree = {"setup.py": SETUP_PY, "uv.lock": UV_LOCK}
    result, sha = _fix(repo, make_failure, tree, "marshmallow", MARSHMALLOW_TRACE)
    assert _text(repo, sha, result, "setup.py") == SETUP_PY.replace(
        "  # the command line\n", "  # the command line\n        'marshmallow>=3.21.1',\n"
    )


def test_setup_py_test_import_goes_to_the_test_extra(repo, make_failure):
    tree = {"setup.py": SETUP_PY, "uv.lock": UV_LOCK}
    result, sha = _fix(repo, make_failure, tree, "responses", TEST_TRACE)
    assert _text(repo, sha, result, "setup.py") == SETUP_PY.replace(
        "['pytest>=6']", "['pytest>=6', 'responses>=0.25.0']"
    )


def test_setup_py_follows_a_name_assigned_a_list(repo, make_failure):
    text = (
        'from setuptools import setup\n\nREQUIRES = ["requests", "click"]\n\n'
        'setup(name="shop", install_requires=REQUIRES)\n'
    )
    result, sha = _fix(repo, make_failure, {"setup.py": text}, "marshmallow", MARSHMALLOW_TRACE)
    assert _text(repo, sha, result, "setup.py") == text.replace(
        '"click"]', '"click", "marshmallow"]'
    )


def test_setup_py_reading_requirements_sends_the_requirement_there(repo, make_failure):
    text = (
        "from setuptools import setup\n\n"
        "with open('requirements.txt') as f:\n"
        "    requirements = f.read().splitlines()\n\n"
        "setup(name='shop', install_requires=requirements)\n"
    )
    tree = {"setup.py": text, "requirements.txt": "requests==2.31.0\n"}
    result, sha = _fix(repo, make_failure, tree, "yaml", MARSHMALLOW_TRACE)
    installed = installed_version("PyYAML")
    assert installed  # the runner tool folder ships PyYAML
    assert _text(repo, sha, result, "requirements.txt") == (
        f"requests==2.31.0\nPyYAML=={installed}\n"
    )
    assert _text(repo, sha, result, "setup.py") == text


def test_setup_py_built_by_a_function_cannot_be_edited_safely(repo, make_failure):
    text = (
        "from setuptools import setup\n\n"
        "def requirements():\n    return [line for line in fetch()]\n\n"
        "setup(name='shop', install_requires=requirements())\n"
    )
    result, _ = _fix(repo, make_failure, {"setup.py": text}, "marshmallow", MARSHMALLOW_TRACE)
    assert not result.repairs
    [reason] = result.unrepaired
    assert "cannot edit safely" in reason
    assert "a call of requirements()" in reason and "not a list literal" in reason


def test_setup_py_that_does_not_parse_is_reported(repo, make_failure):
    text = "from setuptools import setup\nsetup(install_requires=['a',\n"
    result, _ = _fix(repo, make_failure, {"setup.py": text}, "marshmallow", MARSHMALLOW_TRACE)
    assert not result.repairs and "setup.py does not parse" in result.unrepaired[0]


def test_pip_tools_source_is_edited_and_the_compile_command_said(repo, make_failure):
    compiled = (
        "#\n# This file is autogenerated by pip-compile with Python 3.11\n"
        "# by the following command:\n#\n"
        "#    pip-compile --output-file=requirements.txt requirements.in\n#\n"
        "certifi==2024.2.2\n    # via requests\nrequests==2.31.0\n    # via -r requirements.in\n"
    )
    tree = {"requirements.in": "requests\n", "requirements.txt": compiled}
    result, sha = _fix(repo, make_failure, tree, "marshmallow", MARSHMALLOW_TRACE)
    [repair] = result.repairs
    assert repair.files == ["requirements.in"]
    assert _text(repo, sha, result, "requirements.in") == "requests\nmarshmallow\n"
    assert "run `pip-compile --output-file=requirements.txt requirements.in`" in repair.description


def test_compiled_requirements_without_their_source_cannot_be_edited(repo, make_failure):
    compiled = "# This file is autogenerated by pip-compile with Python 3.11\nrequests==2.31.0\n"
    tree = {"requirements.txt": compiled}
    result, _ = _fix(repo, make_failure, tree, "marshmallow", MARSHMALLOW_TRACE)
    assert not result.repairs
    assert (
        "cannot edit safely: requirements.txt is generated by pip-compile" in (result.unrepaired[0])
    )


def test_the_pin_goes_to_the_constraints_file_the_project_pins_in(repo, make_failure):
    tree = {
        "requirements.txt": "-c constraints.txt\nrequests\nclick\n",
        "constraints.txt": "click==8.1.7\nrequests==2.31.0\n",
    }
    result, sha = _fix(repo, make_failure, tree, "yaml", MARSHMALLOW_TRACE)
    installed = installed_version("PyYAML")
    assert _text(repo, sha, result, "requirements.txt") == (
        "-c constraints.txt\nrequests\nclick\nPyYAML\n"
    )
    assert _text(repo, sha, result, "constraints.txt") == (
        f"click==8.1.7\nrequests==2.31.0\nPyYAML=={installed}\n"
    )


def test_test_requirements_file_takes_a_test_import(repo, make_failure):
    tree = {"requirements.txt": "requests\n", "requirements-test.txt": "pytest\n"}
    result, sha = _fix(repo, make_failure, tree, "responses", TEST_TRACE)
    assert result.repairs[0].files == ["requirements-test.txt"]
    assert _text(repo, sha, result, "requirements-test.txt") == "pytest\nresponses\n"


def test_workflow_that_installs_the_project_uses_its_pyproject(repo, make_failure):
    workflow = WORKFLOW.replace(
        "pip install -r requirements/base.txt", "pip install -e . -r requirements/base.txt"
    )
    tree = {"pyproject.toml": PEP621, "requirements/base.txt": "pytest\n"}
    result, _ = _fix(repo, make_failure, tree, "marshmallow", MARSHMALLOW_TRACE, workflow)
    assert result.repairs[0].files == ["pyproject.toml"]


def test_no_dependency_on_the_project_itself(repo, make_failure):
    result, _ = _fix(repo, make_failure, {"pyproject.toml": PEP621}, "shop.schemas")
    assert not result.repairs
    assert "the project itself" in result.unrepaired[0]


def test_no_dependency_on_a_module_of_the_repository(repo, make_failure):
    tree = {"pyproject.toml": PEP621, "src/helpers/__init__.py": ""}
    result, _ = _fix(repo, make_failure, tree, "helpers.text")
    assert not result.repairs
    assert "a module of the repository (src/helpers/)" in result.unrepaired[0]


def test_standard_library_modules_are_never_added(repo, make_failure):
    result, _ = _fix(repo, make_failure, {"pyproject.toml": PEP621}, "tomllib")
    assert not result.repairs
    assert result.unrepaired == ["tomllib is in the standard library: not a missing requirement"]


def test_a_node_failure_is_not_a_python_requirement(repo, make_failure):
    sha = repo.commit({"requirements.txt": "requests\n"}, "init")
    failure = make_failure(FailureCategory.BUILD, "add-requirement", module="lodash")
    failure.pattern = "node-module-not-found"
    result = MissingDependencyFixer().propose(repo.context([failure], sha))
    assert not result.applicable and not result.repairs


def test_the_importer_is_the_last_frame_of_the_repository(repo, make_failure):
    sha = repo.commit(SHOP_SOURCE, "init")
    failure = make_failure(FailureCategory.BUILD, "add-requirement", module="responses")
    failure.evidence = [
        *TEST_TRACE[:2],
        '  File "/usr/lib/python3.11/site-packages/_pytest/python.py", line 1, in x',
    ]
    with checkout(repo.path, sha) as ws:
        assert importer(ws.path, failure) == "tests/test_api.py"


def test_setup_cfg_one_line_value_gets_a_separated_entry(repo, make_failure):
    cfg = (
        "[metadata]\nname = shop\n\n[options]\n"
        "install_requires = requests; click\nzip_safe = False\n"
    )
    result, sha = _fix(repo, make_failure, {"setup.cfg": cfg}, "marshmallow", MARSHMALLOW_TRACE)
    assert _text(repo, sha, result, "setup.cfg") == cfg.replace("click\n", "click; marshmallow\n")


def test_setup_cfg_tests_require_takes_a_test_import(repo, make_failure):
    cfg = (
        "[metadata]\nname = shop\n\n[options]\ninstall_requires =\n  requests\n"
        "tests_require =\n  pytest\n"
    )
    result, sha = _fix(repo, make_failure, {"setup.cfg": cfg}, "responses", TEST_TRACE)
    assert _text(repo, sha, result, "setup.cfg") == cfg + "  responses\n"


def test_two_missing_modules_are_declared_one_after_the_other(repo, make_failure):
    sha = repo.commit({**SHOP_SOURCE, "setup.py": SETUP_PY, "uv.lock": UV_LOCK}, "init")
    failures = []
    for module in ("marshmallow", "responses"):
        failure = make_failure(FailureCategory.BUILD, "add-requirement", module=module)
        failure.evidence = list(MARSHMALLOW_TRACE)
        failures.append(failure)
    result = MissingDependencyFixer().propose(repo.context(failures, sha))
    assert _text(repo, sha, result, "setup.py") == SETUP_PY.replace(
        "  # the command line\n",
        "  # the command line\n        'marshmallow>=3.21.1',\n        'responses>=0.25.0',\n",
    )
