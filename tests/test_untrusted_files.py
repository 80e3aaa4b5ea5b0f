"""Files tabgen did not write, or did not finish writing: a model file whose header was edited (its
checksum recomputed, as anyone can) is refused before anything is built from it, in little memory;
temporary files that a killed writer left behind are removed by the next write, and only those."""

import copy
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from tabgen import Synthesizer
from tabgen.errors import TabgenError
from tabgen.io import atomic_write, load_model, save_model
from tabgen.io.atomic import OLD_TEMPORARY_AGE, temporary_prefix
from tabgen.saved_model import MAX_SAMPLER_SETTINGS

from conftest import fast_config, make_mixed_frame

REPO = Path(__file__).resolve().parent.parent
#: The most a refused load may hold, as the issue asks; a width-20,000 header once took 12.8 GB.
MAX_REFUSAL_RSS = 2 * 2**30


@pytest.fixture(scope="module")
def fitted(tmp_path_factory) -> tuple[Synthesizer, Path]:
    path = tmp_path_factory.mktemp("model") / "model.tabgen"
    synthesizer = Synthesizer(config=fast_config(), progress=False).fit(make_mixed_frame(120))
    synthesizer.save(path)
    return synthesizer, path


def _rewritten(source: Path, target: Path, edit) -> Path:
    """``source`` with its header and tensors edited by ``edit``, written with a valid checksum."""
    header, tensors = load_model(source)
    header = copy.deepcopy(header)
    edit(header, tensors)
    save_model(target, header, tensors)
    return target


def _wider_group(header: dict, tensors: dict) -> None:
    """One more category in the schema and the layout, consistently: only the tensors disagree."""
    column = next(c for c in header["schema"]["columns"] if c["name"] == "group")
    column["categories"].append("d")
    header["layout"]["categories"][0] += 1


EDITS = {
    "denoiser width": (lambda h, t: h["config"]["diffusion"].update(width=20_000), "denoiser.net.proj.weight"),
    "token width": (lambda h, t: h["config"]["vae"].update(d_token=64), "vae."),
    "category count": (_wider_group, "vae.tokenizer.embeddings.weight"),
    "layout only": (lambda h, t: h["layout"]["categories"].__setitem__(0, 9), "layout in the header"),
    "missing tensor": (lambda h, t: t.pop("denoiser.net.mlp.2.weight"), "missing: denoiser.net.mlp.2.weight"),
    "extra tensor": (lambda h, t: t.update({"vae.spare": torch.zeros(3)}), "unexpected: vae.spare"),
    "latent scaling": (lambda h, t: t.update({"latent.std": torch.ones(5)}), "latent.std"),
    "sample batch": (lambda h, t: h["config"]["sampler"].update(batch_size=10**9), "batch_size"),
    "steps": (lambda h, t: h["config"]["sampler"].update(num_steps=10**9), "num_steps"),
    "calibration rows": (lambda h, t: h["config"]["sampler"].update(calibration_rows=10**12), "calibration_rows"),
    "VAE layers": (lambda h, t: h["config"]["vae"].update(n_layers=10**8), "VAE layers"),
    "embedding offsets": (lambda h, t: t.update({"vae.tokenizer.offsets": t["vae.tokenizer.offsets"] + 50}),
                          "vae.tokenizer.offsets"),
    "calibration bias": (lambda h, t: t.update({"calibration.bias.0": torch.zeros(7)}), "calibration.bias.0"),
    "calibration pairs": (lambda h, t: t.update({"calibration.pairs": torch.tensor([[99, 0]])}), "calibration.pairs"),
    "latent width": (lambda h, t: h.update(latent_dim=1000), "latent_dim"),
    "attention heads": (lambda h, t: h["config"]["vae"].update(n_heads=3), "multiple of n_heads"),
    "noise channels": (lambda h, t: h["config"]["diffusion"].update(noise_channels=63), "noise_channels 63 is odd"),
    "transform quantiles": (lambda h, t: t.update({"transform.quantiles/x": t["transform.quantiles/x"][None]}),
                            "transform.quantiles/x"),
}


@pytest.mark.parametrize("name", list(EDITS))
def test_a_header_that_does_not_describe_the_tensors_is_refused(fitted, tmp_path, name):
    edit, words = EDITS[name]
    path = _rewritten(fitted[1], tmp_path / "edited.tabgen", edit)
    started = time.monotonic()
    with pytest.raises(TabgenError) as refused:
        Synthesizer.load(path, progress=False)
    assert time.monotonic() - started < 5
    message = str(refused.value)
    assert words in message and str(path) in message and "\n" not in message


def test_an_untouched_file_loads_and_samples_identically(fitted, tmp_path):
    synthesizer, path = fitted
    copied = _rewritten(path, tmp_path / "copy.tabgen", lambda h, t: None)
    expected = synthesizer.sample(200, seed=7)
    for source in (path, copied):
        pd.testing.assert_frame_equal(Synthesizer.load(source, progress=False).sample(200, seed=7), expected)


def test_a_model_the_loader_would_refuse_is_not_written(fitted, tmp_path):
    synthesizer, _ = fitted
    original = synthesizer.config_.sampler.batch_size
    synthesizer.config_.sampler.batch_size = MAX_SAMPLER_SETTINGS["batch_size"] + 1
    try:
        with pytest.raises(TabgenError, match="batch_size"):
            synthesizer.save(tmp_path / "big.tabgen")
    finally:
        synthesizer.config_.sampler.batch_size = original
    assert not (tmp_path / "big.tabgen").exists()


_CHILD = """
import resource, sys, time
from tabgen.cli import main
started = time.monotonic()
try:
    sys.argv = ["tabgen", *sys.argv[1:]]
    main()
finally:
    scale = 1 if sys.platform == "darwin" else 1024
    print(f"child {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale} {time.monotonic() - started:.2f}")
"""


def test_the_cli_refuses_a_huge_denoiser_header_in_little_memory(fitted, tmp_path):
    path = _rewritten(fitted[1], tmp_path / "wide.tabgen",
                      lambda h, t: h["config"]["diffusion"].update(width=20_000))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", _CHILD, "sample", "-m", str(path), "-n", "5", "-o", "out.csv"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: ") and "denoiser" in done.stderr
    peak, seconds = map(float, done.stdout.split("child ")[-1].split())
    print(f"refused in {seconds:.2f} s at a peak RSS of {peak / 2**20:.0f} MiB")
    assert peak < MAX_REFUSAL_RSS and seconds < 30
    assert not (tmp_path / "out.csv").exists()


def _dead_pid() -> int:
    """The PID of a process that has ended (and been reaped)."""
    for _ in range(10):
        child = subprocess.Popen([sys.executable, "-c", "pass"])
        child.wait()
        try:
            os.kill(child.pid, 0)
        except ProcessLookupError:
            return child.pid
    pytest.skip("no ended process's PID stayed free")


@pytest.mark.skipif(os.name == "nt", reason="processes cannot be probed there: nothing counts as stale")
def test_a_killed_writers_temporary_file_goes_with_the_next_write_and_no_other(tmp_path):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        dead_pid = _dead_pid()
        dead = tmp_path / f"{temporary_prefix('out.csv', dead_pid)}ab12cd_3.tmp"
        live = tmp_path / f"{temporary_prefix('out.csv', sleeper.pid)}ab12cd_3.tmp"
        old = tmp_path / ".out.csv.k3j_9x2q.tmp"  # the naming before the PID, from a writer gone an hour
        kept = {
            "live writer": live,
            "other host": tmp_path / f".out.csv.{dead_pid}.another-host.ab12cd_3.tmp",
            "other target": tmp_path / f"{temporary_prefix('out.csv.gz', dead_pid)}ab12cd_3.tmp",
            "recent old naming": tmp_path / ".out.csv.zz99yy88.tmp",
            "not ours": tmp_path / ".out.csv.notes.tmp",
        }
        for file in [dead, old, *kept.values()]:
            file.write_text("partial")
        an_hour_ago = time.time() - OLD_TEMPORARY_AGE - 60
        os.utime(old, (an_hour_ago, an_hour_ago))
        with atomic_write(tmp_path / "out.csv", "w") as f:
            f.write("a,b\n")
        assert not dead.exists() and not old.exists()
        assert {what: file.exists() for what, file in kept.items()} == dict.fromkeys(kept, True)
        assert (tmp_path / "out.csv").read_text() == "a,b\n"
    finally:
        sleeper.kill()
        sleeper.wait()


def test_the_folder_is_synced_after_the_rename(tmp_path, monkeypatch):
    target = tmp_path / "out.csv"
    real_fsync, synced = os.fsync, []

    def fsync(fd: int) -> None:
        folder = os.path.samestat(os.fstat(fd), os.stat(tmp_path))
        synced.append(("folder" if folder else "file", target.exists()))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    with atomic_write(target, "w") as f:
        f.write("x\n")
    assert synced == [("file", False), ("folder", True)]


def test_a_folder_that_cannot_be_synced_still_gets_the_file(tmp_path, monkeypatch):
    target = tmp_path / "out.csv"
    real_open = os.open

    def refusing_open(path, flags, *args, **kwargs):
        if Path(path) == tmp_path:
            raise PermissionError("folders cannot be opened here")
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", refusing_open)
    with atomic_write(target, "w") as f:
        f.write("x\n")
    assert target.read_text() == "x\n"
