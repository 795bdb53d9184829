"""The release pipeline `python -m publish`: one ordered run, one `--check`, atomic writes, the
handout's generated parts, and the student package with its leak scan.

The `published` fixture (conftest) runs the whole pipeline once in memory; the tests compare,
write and check its outputs in temporary folders.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest

from publish import __main__ as cli
from publish import files, handout, leaks, package, pipeline, points
from publish.notebooks import SOURCE_FOLDER

from .conftest import REPO

PACKAGE_NAMES = {  # what the package's top folder holds
    "README.md",
    "SUBMIT.md",
    "requirements.txt",
    "load_data.py",
    "models.py",
    "episodes.ipynb",
    "learning_curves.ipynb",
    "data",
    "kit",
    "check",
}


def write_tree(outputs: dict[str, bytes], root: Path, with_package: bool = True) -> None:
    for path, content in outputs.items():
        if with_package or not pipeline.is_package(path):
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            (root / path).write_bytes(content)


@pytest.fixture
def fake_generate(published, monkeypatch):
    """`python -m publish` without rerunning nbgrader: `generate` returns the fixture's files."""

    def generate(settings, report=print):
        report("[1/1] (the test's outputs)")
        return dict(published)

    monkeypatch.setattr(cli, "generate", generate)


# --------------------------------------------------------------------------------------------
# The pipeline and --check


def test_check_passes_on_the_committed_tree():
    """Is every committed generated file what `python -m publish` makes right now?"""
    done = subprocess.run(
        [sys.executable, "-m", "publish", "--check"],
        cwd=REPO,
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, f"stale:\n{done.stdout[-3000:]}{done.stderr}"
    assert "up to date" in done.stdout


def test_the_steps_generate_every_file_once_in_their_order(published):
    """Does one run make the notebooks, the stubs and public checks, the student notebooks,
    the handout and the package, and nothing else?"""
    folders = sorted({path.split("/")[0] for path in published})
    assert folders == ["assignment", "dist", "handout", "notebooks"]
    assert {p for p in published if p.startswith("notebooks/")} == {
        f"{SOURCE_FOLDER}/episodes.ipynb",
        f"{SOURCE_FOLDER}/learning_curves.ipynb",
        "notebooks/demo.ipynb",
    }
    assert {p.removeprefix("assignment/") for p in published if p.startswith("assignment/")} == {
        "load_data.py",
        "models.py",
        "episodes.ipynb",
        "learning_curves.ipynb",
        "public_checks/test_episodes.py",
        "public_checks/test_model.py",
    }
    assert [name for name, _ in pipeline.STEPS] == [
        "notebooks",
        "stubs",
        "student notebooks",
        "handout",
        "package",
    ]


def test_check_exits_1_with_a_diff_and_one_error_line(published, fake_generate, tmp_path, capsys):
    """Does `--check` name each stale file in one stderr line, show the change as a diff, and
    does a plain run then bring everything up to date?"""
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    write_tree(published, tmp_path)
    stub = tmp_path / "assignment" / "models.py"
    stub.write_text(stub.read_text().replace("Steps:", "Steps (edited):", 1))
    (tmp_path / "handout" / "SUBMIT.md").unlink()
    assert cli.main(["--check"], root=tmp_path) == 1
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and captured.err.startswith("error: 2 generated")
    assert "assignment/models.py" in captured.err and "handout/SUBMIT.md" in captured.err
    assert "run python -m publish" in captured.err
    removed = [line for line in captured.out.splitlines() if line.startswith("-")]
    assert any("Steps (edited):" in line for line in removed), "the diff must show the edit"

    assert cli.main([], root=tmp_path) == 0
    assert "wrote assignment/models.py" in capsys.readouterr().out
    assert pipeline.stale(published, tmp_path) == {}
    assert cli.main(["--check"], root=tmp_path) == 0


def test_the_package_is_compared_only_where_it_was_built(published, tmp_path):
    """Is a missing dist/ left out of --check, while an edited, extra or missing file of a
    built package makes it stale?"""
    write_tree(published, tmp_path, with_package=False)
    assert pipeline.stale(published, tmp_path) == {}
    assert pipeline.write(published, tmp_path) == [f"{package.FOLDER}/", package.ZIP]
    assert pipeline.stale(published, tmp_path) == {}
    folder = tmp_path / package.FOLDER
    (folder / "notes.txt").write_text("mine")
    (folder / "README.md").write_text("edited")
    (tmp_path / package.ZIP).unlink()
    stale = pipeline.stale(published, tmp_path)
    assert sorted(stale) == sorted(
        [f"{package.FOLDER}/notes.txt", f"{package.FOLDER}/README.md", package.ZIP]
    )
    pipeline.write(published, tmp_path)
    assert pipeline.stale(published, tmp_path) == {} and not (folder / "notes.txt").exists()


def test_a_failed_write_leaves_the_old_files_and_no_temporary_file(tmp_path, monkeypatch):
    """If writing fails half-way, are the old file and the old package folder intact, and no
    temporary file or folder left behind?"""
    target = tmp_path / "a.txt"
    target.write_text("old")
    folder = tmp_path / "pkg"
    files.replace_folder(folder, {"one.txt": b"1", "sub/two.txt": b"2"})

    def broken_write(self, data):
        raise OSError("disk full")

    monkeypatch.setattr(Path, "write_bytes", broken_write)
    with pytest.raises(OSError, match="disk full"):
        files.replace_folder(folder, {"one.txt": b"new", "sub/two.txt": b"new"})
    monkeypatch.undo()
    real_fdopen = files.os.fdopen

    class Half:
        def __init__(self, fd, mode):
            self.file = real_fdopen(fd, mode)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.file.close()

        def write(self, data):
            self.file.write(data[:2])
            raise KeyboardInterrupt

    monkeypatch.setattr(files.os, "fdopen", Half)
    with pytest.raises(KeyboardInterrupt):
        files.write_atomic(target, "new text")
    monkeypatch.undo()
    assert target.read_text() == "old"
    assert (folder / "one.txt").read_bytes() == b"1" and (
        folder / "sub/two.txt"
    ).read_bytes() == b"2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "pkg"]


def test_help_and_a_bad_hint_level_in_pyproject(tmp_path, capsys):
    """Does `--help` state the defaults, and does a bad `[tool.publish] hints` give one line?"""
    done = subprocess.run(
        [sys.executable, "-m", "publish", "--help"],
        check=False,
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0 and done.stdout.count("(default:") == 2
    (tmp_path / "pyproject.toml").write_text('[tool.publish]\nhints = "hard"\n')
    assert cli.main(["--check"], root=tmp_path) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown hint level 'hard'" in err


# --------------------------------------------------------------------------------------------
# The handout


def test_the_points_table_follows_the_checks_points_markers(tmp_path, published):
    """Is the points table generated from the markers: does changing one check's points
    change the table's public total?"""
    checks = tmp_path / "checks"
    shutil.copytree(
        REPO / "autograder" / "checks", checks, ignore=shutil.ignore_patterns("__pycache__")
    )
    before = points.grader_checks(checks)
    episodes = checks / "public" / "test_episodes.py"
    text = episodes.read_text()
    marker = "@pytest.mark.points(1)\ndef test_every_image_is_one_of_the_given_drawings"
    assert marker in text
    episodes.write_text(text.replace(marker, marker.replace("(1)", "(6)")))
    after = points.grader_checks(checks)
    public = sum(c.points for c in before if c.file.startswith("public/"))
    assert sum(c.points for c in after if c.file.startswith("public/")) == public + 5
    sources = pipeline.notebook_sources(published)
    table = handout.points_table(after, points.notebook_cells(sources), checks)
    assert f"public {public + 5:g} + hidden" in table
    readme = published["handout/README.md"].decode()
    assert handout.points_table(before, points.notebook_cells(sources), checks) in readme


def test_the_handout_lists_every_written_question_and_notebook_point(published):
    """Does the handout hold each written question of the notebooks with its points, and the
    notebooks' total from their nbgrader metadata?"""
    readme = published["handout/README.md"].decode()
    sources = pipeline.notebook_sources(published)
    cells = points.notebook_cells(sources)
    written = [c for c in cells if c.written]
    assert len(written) == 4 and readme.count("\n1. `") == len(written)
    for content in sources.values():
        notebook = nbformat.reads(content.decode(), 4)
        for index, cell in enumerate(notebook.cells):
            if cell.metadata.get("nbgrader", {}).get("grade_id") in {c.grade_id for c in written}:
                prompt = handout.QUESTION.search(notebook.cells[index - 1].source)["prompt"]
                assert " ".join(prompt.split()) in readme
    total = sum(c.points for c in cells)
    assert f"**{total:g}**" in readme


def test_the_handout_is_for_students(published):
    """Does the handout give the student's commands, and nothing only an instructor needs?"""
    readme = published["handout/README.md"].decode() + published["handout/SUBMIT.md"].decode()
    assert "{{" not in readme, "a template placeholder was left unfilled"
    for command in (
        "pip install -r requirements.txt",
        "-m kit.train --code . --dry-run",
        "-m check",
    ):
        assert command in readme
    instructor_only = ("solutions/", "python -m autograder", "autograder/", "hidden/", "-m publish")
    for text in (*instructor_only, "threshold", "calibrat", "../", "HOMEWORK_SPEC", "SOURCES.md"):
        assert text not in readme, f"the handout mentions {text!r}"
    requirements = published["handout/requirements.txt"].decode()
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in requirements
    pinned = [
        line
        for line in (REPO / "requirements.txt").read_text().splitlines()
        if line.startswith("torch==")
    ]
    assert pinned and pinned[0] in requirements.splitlines()


# --------------------------------------------------------------------------------------------
# The student package and the leak scan


def test_the_package_holds_exactly_its_list_in_folder_and_zip(published):
    """Are the folder and the zip the explicit list, with the generated contents, and is the zip
    the same bytes when built again?"""
    folder = {
        path.removeprefix(f"{package.FOLDER}/"): content
        for path, content in published.items()
        if path.startswith(f"{package.FOLDER}/")
    }
    assert {name.split("/")[0] for name in folder} == PACKAGE_NAMES
    for entry in package.CONTENTS:
        if not entry.optional:
            assert any(n == entry.name or n.startswith(f"{entry.name}/") for n in folder), entry
    assert "kit/episodes.py" not in folder and "kit/loader.py" in folder
    assert set(json.loads(folder[package.POINTS_FILE])) == {"public", "hidden", "hints"}
    assert folder["README.md"] == published["handout/README.md"]
    assert folder["models.py"] == published["assignment/models.py"]
    members = leaks.zip_members(published[package.ZIP])
    assert members == {f"{package.NAME}/{name}": content for name, content in folder.items()}
    assert package.zip_bytes(folder) == published[package.ZIP]


def test_a_folder_entry_brings_its_files_without_bytecode(tmp_path):
    """Is a committed folder in the list (how the runtime will be added) copied file by file,
    bytecode left out, and do two entries writing one name fail?"""
    (tmp_path / "runtime" / "__pycache__").mkdir(parents=True)
    (tmp_path / "runtime" / "__init__.py").write_text("")
    (tmp_path / "runtime" / "train.py").write_text("x = 1\n")
    (tmp_path / "runtime" / "__pycache__" / "train.cpython-311.pyc").write_bytes(b"\0")
    contents = (package.Entry("README.md", "handout/README.md"), package.Entry("kit", "runtime"))
    built = package.package_files({"handout/README.md": b"hi"}, tmp_path, contents)
    assert built == {"README.md": b"hi", "kit/__init__.py": b"", "kit/train.py": b"x = 1\n"}
    with pytest.raises(ValueError, match="two package entries write README.md"):
        package.package_files({"handout/README.md": b"hi"}, tmp_path, contents[:1] * 2)


@pytest.fixture(scope="module")
def secrets(published) -> list[leaks.Secret]:
    sources = {f"{SOURCE_FOLDER}/{n}": c for n, c in pipeline.notebook_sources(published).items()}
    return leaks.secrets(sources)


def test_the_zip_holds_no_solution_hidden_check_threshold_or_calibration_line(published, secrets):
    """The leak test: is no non-trivial line of any solution region, hidden test, model answer
    or hidden-check file (thresholds and calibration data included) in the zip?"""
    origins = {secret.origin for secret in secrets}
    assert {"solutions/load_data.py", "solutions/models.py"} <= origins
    for path in leaks.hidden_files():
        if path.name != "__init__.py":
            assert path.relative_to(REPO).as_posix() in origins, f"no secret from {path.name}"
    assert any("(model answer)" in origin for origin in origins)
    assert any(s.origin.endswith("episodes.ipynb") and "ids_images" in s.line for s in secrets)
    members = leaks.zip_members(published[package.ZIP])
    assert leaks.scan(members, secrets) == []
    for line in (
        "order = self.rng.permutation(N)",
        "return F.cross_entropy(query_logits, query_targets)",
    ):
        assert leaks.normalise(line) in {secret.line for secret in secrets}, line


def planted(members: dict[str, bytes], name: str, line: str) -> dict[str, bytes]:
    copy = dict(members)
    copy[name] = copy[name] + f"\n{line}\n".encode()
    return copy


@pytest.mark.parametrize(
    "source",
    [
        "solutions/models.py",
        "autograder/checks/hidden/thresholds.py",
        "autograder/checks/hidden/calibration_local_cpu.json",
        "autograder/checks/hidden/calibration_h200_cpu.txt",
        "autograder/checks/hidden/test_accuracy.py",
    ],
)
def test_the_scan_finds_a_secret_line_planted_in_the_package(published, secrets, source):
    """Does the scan report a line of each kind of secret file when it reaches the package?"""
    line = next(s.line for s in secrets if s.origin == source)
    members = leaks.zip_members(published[package.ZIP])
    hits = leaks.scan(
        planted(members, f"{package.NAME}/models.py", f"    {line}  # copied"), secrets
    )
    assert [(hit.file, hit.secret.origin) for hit in hits] == [
        (f"{package.NAME}/models.py", source)
    ]


def test_the_scan_reads_notebooks_cell_by_cell_and_flags_hidden_file_names(published, secrets):
    """Is a model answer pasted into a notebook cell found, and a file named like a hidden
    check flagged; does the package step refuse to build a leaking package?"""
    members = leaks.zip_members(published[package.ZIP])
    name = f"{package.NAME}/episodes.ipynb"
    notebook = nbformat.reads(members[name].decode(), 4)
    answer = next(s for s in secrets if s.origin.endswith("episodes.ipynb (model answer)"))
    notebook.cells[-1].source = answer.line
    leaky = dict(members, **{name: nbformat.writes(notebook).encode()})
    leaky[f"{package.NAME}/thresholds.py"] = b"x = 1\n"
    hits = leaks.scan(leaky, secrets)
    assert {(hit.file, hit.secret) for hit in hits} == {
        (name, answer),
        (
            f"{package.NAME}/thresholds.py",
            leaks.Secret("thresholds.py", "a hidden-check file name"),
        ),
    }
    generated = dict(published)
    generated["assignment/models.py"] += b"\n" + answer.line.encode() + b"\n"
    sources = {f"{SOURCE_FOLDER}/{n}": c for n, c in pipeline.notebook_sources(published).items()}
    with pytest.raises(package.LeakError, match="would leak 1 secret"):
        package.build(generated, sources)


def test_the_zip_unpacks_into_one_folder_of_plain_files(published, tmp_path):
    """Does the zip unpack, with the standard library, into `blackbox-student/` holding the
    stubs, notebooks and handout, readable by everyone?"""
    with zipfile.ZipFile(io.BytesIO(published[package.ZIP])) as archive:
        archive.extractall(tmp_path)
        modes = {info.external_attr >> 16 for info in archive.infolist()}
    assert sorted(p.name for p in tmp_path.iterdir()) == [package.NAME]
    assert {p.name for p in (tmp_path / package.NAME).iterdir()} == PACKAGE_NAMES
    assert modes == {0o644}
    nbformat.validate(nbformat.read(tmp_path / package.NAME / "episodes.ipynb", 4))


def test_the_grader_modules_ship_with_check_imports_and_a_missing_one_fails(tmp_path):
    """Are `autograder.X` imports (and prose) of a shipped grader module pointed at `check.X`,
    is an optional entry skipped while absent, and does a grader module that imports an
    unshipped grader module stop the build?"""
    (tmp_path / "grader").mkdir()
    (tmp_path / "grader" / "feedback.py").write_text("BUGS = {}\n")
    (tmp_path / "grader" / "session.py").write_text("class ChildError(Exception): ...\n")
    (tmp_path / "grader" / "test_x.py").write_text(
        '"""See `autograder.feedback.BUGS`."""\nfrom autograder.feedback import BUGS\n'
        "from autograder.runner import ChildError\n"
    )
    contents = (
        package.Entry("check/feedback.py", "grader/feedback.py", grader=True),
        package.Entry("check/checks/test_x.py", "grader/test_x.py", grader=True),
        package.Entry("kit/step.py", "kit/step.py", optional=True),
        package.Entry("check/session.py", "grader/session.py"),
    )
    built = package.package_files({}, tmp_path, contents)
    assert built["check/checks/test_x.py"] == (
        b'"""See `check.feedback.BUGS`."""\nfrom check.feedback import BUGS\n'
        b"from check.session import ChildError\n"  # the grader's runner is replaced
    )
    assert "kit/step.py" not in built
    with pytest.raises(ValueError, match="imports check.feedback, which the student"):
        package.package_files({}, tmp_path, contents[1:])


@pytest.mark.parametrize(
    ("name", "line", "what"),
    [
        ("kit/train.py", "def sample_tasks(images, N, K, B, rng):", "batched sampler"),
        ("kit/plots.py", "class TaskBatches:", "batched sampler"),
        ("kit/extra.py", "        self.lstm = nn.LSTM(784, 128)", "LSTM model"),
        ("kit/episodes.py", "x = 1", "batched sampler module"),
    ],
)
def test_the_scan_flags_any_working_implementation_of_the_homework(published, name, line, what):
    """Is the kit's batched sampler, its module, or an LSTM model outside the stub found?"""
    members = leaks.zip_members(published[package.ZIP])
    key = f"{package.NAME}/{name}"
    leaky = dict(members, **{key: members.get(key, b"") + f"\n{line}\n".encode()})
    hits = [hit for hit in leaks.scan(leaky, []) if hit.file == key]
    assert len(hits) == 1 and what in hits[0].secret.origin
    assert leaks.scan(members, []) == []  # the stub models.py builds its LSTMs by design
