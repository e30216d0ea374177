"""What the sweep test modules share (tests/test_sweep*.py): the variants file, its writer, and a
folder's bytes. Three modules, so xdist runs the Cerebro sweep's tests, the vector engine's and the
SIGKILL test on different workers."""

SWEEP_TOML = """
base = "default"
[selection]
selection_start = "2021-07-01"
selection_end = "2021-12-31"
holdout_start = "2022-07-01"
holdout_end = "2022-12-31"
[variants.grid]
top_k = [3, 5]
[[variants.list]]
name = "slow-review"
review_days = 14
entry_threshold = 0.1
[[variants.list]]
name = "broken"
top_k = 0
"""


def write_toml(tmp_path, text, name="mysweep.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def tree(folder) -> dict:
    """{relative path: bytes} of every file under `folder`."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
