"""Every recipe runs through ltspk.cli.entry.run: ltspk's errors end in one line, a closed pipe
ends quietly, and a bad number on the command line is named before anything is built."""

import subprocess
import sys
from pathlib import Path

import pytest

from ltspk.cli.entry import run
from ltspk.runtime.errors import DataError

ROOT = Path(__file__).resolve().parents[1]


def test_an_ltspk_error_is_one_line_and_status_1():
    def main(argv):
        raise DataError("x.csv", "no rows")
    with pytest.raises(SystemExit) as e:
        run(main, argv=[])
    assert e.value.code == "error: x.csv: no rows"


def test_other_errors_are_not_hidden():
    def main(argv):
        raise KeyError("a bug")
    with pytest.raises(KeyError):
        run(main, argv=[])


def test_every_recipe_ends_with_the_entry():
    for path in sorted((ROOT / "recipes").glob("*.py")):
        text = path.read_text()
        assert "\nif __name__ == \"__main__\":\n    run(main" in text, path.name
        assert "sys.path" not in text, path.name


def test_a_closed_pipe_ends_quietly(tmp_path):
    script = tmp_path / "many.py"
    script.write_text("from ltspk.cli.entry import run\n"
                      "def main(argv):\n    for i in range(200000):\n        print('line', i)\n"
                      "run(main)\n")
    p = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdout.read(10)
    p.stdout.close()
    err = p.stderr.read().decode()
    assert p.wait(timeout=60) == 1 and "Traceback" not in err and "BrokenPipe" not in err, err


def test_a_word_for_a_number_is_named_before_anything_is_built():
    out = subprocess.run([sys.executable, str(ROOT / "recipes" / "train.py"), str(ROOT / "hparams" / "demo_aam.yaml"),
                          "--lr", "abc"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 1 and out.stderr.strip().splitlines()[-1] == (
        f"error: {ROOT / 'hparams' / 'demo_aam.yaml'}: lr must be a positive number, got 'abc'")
    assert "Traceback" not in out.stderr
