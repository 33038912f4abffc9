"""The re-run check (poseprompt.tools.same_numbers): a moved number is found, a moved time is not."""
import json
import subprocess

from poseprompt.tools import same_numbers


def _commit(root, files):
    for name, text in files.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    subprocess.run(["git", "-C", str(root), "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x"],
                   check=True)


def _repo(tmp_path):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    metrics = {"main": {"mpjpe": 75.123456789012, "per_seed": [75.1, 75.2]}, "eval_seconds": 12.5,
               "cost": {"latency_ms": 18.3, "trainable": 179000}}
    _commit(tmp_path, {"metrics/variants/full.json": json.dumps(metrics),
                       "figures/tables/main_results.md": "| full | 75.1 |\n",
                       "figures/tables/cost.md": "| full | 18.3 ms |\n",
                       "dvclive/train/full/seed0/plots/metrics/lr.tsv": "step\tlr\n0\t0.001\n"})
    return metrics


def test_a_rerun_with_other_times_only_is_equal(tmp_path):
    metrics = _repo(tmp_path)
    metrics["eval_seconds"] = 99.0
    metrics["cost"]["latency_ms"] = 25.0
    (tmp_path / "metrics/variants/full.json").write_text(json.dumps(metrics, indent=2))  # other layout
    (tmp_path / "figures/tables/cost.md").write_text("| full | 25.0 ms |\n")
    assert same_numbers.main(["HEAD", "--root", str(tmp_path)]) == 0


def test_every_kind_of_moved_number_is_found(tmp_path, capsys):
    metrics = _repo(tmp_path)
    metrics["main"]["mpjpe"] = 75.123456789013                       # last digit of a float
    metrics["main"]["per_seed"].append(75.3)                           # a seed more
    metrics["cost"]["trainable"] = 179001                              # a count beside a timing key
    (tmp_path / "metrics/variants/full.json").write_text(json.dumps(metrics))
    (tmp_path / "figures/tables/main_results.md").write_text("| full | 75.2 |\n")
    (tmp_path / "dvclive/train/full/seed0/plots/metrics/lr.tsv").unlink()
    (tmp_path / "metrics/variants/gatfun.json").write_text("{}")
    assert same_numbers.main(["HEAD", "--root", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    for expected in ["metrics/variants/full.json/main/mpjpe: 75.123456789012 in the revision, 75.123456789013 now",
                     "metrics/variants/full.json/main/per_seed: 2 items in the revision, 3 now",
                     "metrics/variants/full.json/cost/trainable: 179000",
                     "figures/tables/main_results.md: the text differs",
                     "dvclive/train/full/seed0/plots/metrics/lr.tsv: missing now",
                     "metrics/variants/gatfun.json: not in the revision",
                     "6 difference(s)"]:
        assert expected in out, (expected, out)


def test_an_int_that_became_a_float_is_a_difference():
    assert same_numbers.json_differences({"n": 3}, {"n": 3.0}) == ["/n: 3 in the revision, 3.0 now"]
    assert same_numbers.json_differences({"n_s": 3}, {"n_s": 4}) == []
