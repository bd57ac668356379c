"""The Hugging Face Hub, offline.

Push goes through the real huggingface_hub code with only the HTTP boundary replaced (an
in-memory Hub behind ``httpx`` ``MockTransport``, installed with ``set_client_factory``); pull and
``hf://`` loading read a pre-populated huggingface_hub cache with offline mode on.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import subprocess
import sys
import time
import warnings
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy
import pytest
import torch
import yaml
from click.testing import CliRunner

import condense
from condense.cli import cli
from condense.hub import (
    HubPath,
    HubPathWarning,
    _paths,
    _push,
    default_path_in_repo,
    local_stem,
    parse,
    pull,
    push,
)
from condense.plugins import pm

hh = pytest.importorskip("huggingface_hub")
from huggingface_hub import DatasetCard, constants  # noqa: E402 - after the importorskip above
from huggingface_hub.utils import _http  # noqa: E402 - after the importorskip above

try:
    import httpx2 as httpx
except ImportError:  # huggingface_hub < 2
    import httpx  # type: ignore[no-redef]

TOKEN = "hf_TESTtoken_do_not_leak_0123456789"
RUN_TINY = ["run", "dm", "--dataset", "tiny", "--ipc", "2", "--iterations", "2", "--no-progress",
            "--set", "batch_real=4", "--set", "sampler.width=8"]


# --------------------------------------------------------------------------- a fake Hub (HTTP)

class FakeHub:
    """Just enough of the Hub's HTTP API for create_repo / create_commit / hf_hub_download."""

    def __init__(self) -> None:
        self.repos: dict[str, dict[str, Any]] = {}
        self.requests: list[httpx.Request] = []
        self.commits: list[dict[str, Any]] = []
        self.rejected: list[dict[str, Any]] = []  # commits refused for a stale parentCommit
        self.fail_on: str | None = None
        self.validated: list[str] = []
        #: called with (repo_id, branch) before each commit is applied: lets a test land another
        #: commit first, as a concurrent push would
        self.before_commit: Any = None

    def seed(self, repo_id: str, files: dict[str, bytes]) -> None:
        self.repos[repo_id] = {"private": False, "branches": {"main": dict(files)}, "sha": {},
                               "history": {}}
        self._record(repo_id, "main")

    def _record(self, repo_id: str, branch: str) -> str:
        repo = self.repos[repo_id]
        sha = repo["sha"][branch] = self._sha(repo_id, branch)
        repo["history"][sha] = dict(repo["branches"][branch])
        return sha

    def _sha(self, repo_id: str, branch: str) -> str:
        files = self.repos[repo_id]["branches"][branch]
        h = hashlib.sha1(repo_id.encode())
        for k in sorted(files):
            h.update(k.encode() + hashlib.sha1(files[k]).digest())
        return h.hexdigest()

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path
        if self.fail_on and self.fail_on in path:
            raise httpx.ConnectError("connection reset by peer", request=request)
        if path == "/api/agent-harnesses":
            return httpx.Response(404)
        if path == "/api/validate-yaml":  # the Hub checks a README's front matter before a commit
            body = json.loads(request.content)
            assert body["repoType"] == "dataset"
            yaml.safe_load(body["content"].split("---")[1])
            self.validated.append(body["content"])
            return httpx.Response(200, json={"warnings": []})
        if path == "/api/repos/create":
            body = json.loads(request.content)
            repo_id = f"{body['organization']}/{body['name']}"
            if repo_id in self.repos:
                return httpx.Response(409, json={"error": "You already created this dataset repo",
                                                 "url": f"https://huggingface.co/datasets/{repo_id}"})
            self.seed(repo_id, {".gitattributes": b"*.safetensors filter=lfs\n"})
            self.repos[repo_id]["private"] = body.get("visibility") == "private"
            return httpx.Response(200, json={"url": f"https://huggingface.co/datasets/{repo_id}"})
        parts = path.strip("/").split("/")
        if parts[:2] == ["api", "datasets"]:
            repo_id, action, rest = f"{parts[2]}/{parts[3]}", parts[4], "/".join(parts[5:])
            if repo_id not in self.repos:
                return httpx.Response(404, headers={"X-Error-Code": "RepoNotFound"},
                                      json={"error": "Repository not found"})
            if action == "preupload":
                files = json.loads(request.content)["files"]
                return httpx.Response(200, json={"files": [
                    {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
                    for f in files]})
            if action == "branch":
                repo = self.repos[repo_id]
                repo["branches"].setdefault(rest, dict(repo["branches"]["main"]))
                self._record(repo_id, rest)
                return httpx.Response(200, json={})
            if action == "commit":
                return self._commit(repo_id, rest, request)
            if action == "revision" and request.method == "GET":  # HfApi.repo_info
                repo = self.repos[repo_id]
                if rest not in repo["branches"]:
                    return httpx.Response(404, headers={"X-Error-Code": "RevisionNotFound"},
                                          json={"error": "Invalid rev id"})
                return httpx.Response(200, json={
                    "id": repo_id, "private": repo["private"], "sha": repo["sha"][rest],
                    "siblings": [{"rfilename": f} for f in sorted(repo["branches"][rest])]})
        if parts[0] == "datasets" and "resolve" in parts:
            i = parts.index("resolve")
            repo_id, rev, name = "/".join(parts[1:i]), parts[i + 1], "/".join(parts[i + 2:])
            repo = self.repos.get(repo_id)
            if repo is None:
                return httpx.Response(401, headers={"X-Error-Code": "RepoNotFound"},
                                      json={"error": "Repository not found"})
            files = repo["branches"].get(rev)
            sha = repo["sha"].get(rev, rev)
            if files is None:  # a commit hash
                files = repo["history"].get(rev)
            if files is None:
                return httpx.Response(404, headers={"X-Error-Code": "RevisionNotFound"},
                                      json={"error": "Invalid rev id"})
            if name not in files:
                return httpx.Response(404, headers={"X-Error-Code": "EntryNotFound",
                                                    "X-Repo-Commit": sha},
                                      json={"error": "Entry not found"})
            data = files[name]
            headers = {"X-Repo-Commit": sha, "ETag": f'"{hashlib.sha1(data).hexdigest()}"',
                       "Content-Length": str(len(data))}
            return httpx.Response(200, headers=headers,
                                  content=b"" if request.method == "HEAD" else data)
        return httpx.Response(500, json={"error": f"FakeHub: unexpected {request.method} {path}"})

    def _commit(self, repo_id: str, branch: str, request: httpx.Request) -> httpx.Response:
        lines = [json.loads(line) for line in request.read().splitlines()]
        header = lines[0]["value"]
        added = {}
        for line in lines[1:]:
            assert line["key"] == "file", line["key"]
            added[line["value"]["path"]] = base64.b64decode(line["value"]["content"])
        if self.before_commit is not None:
            self.before_commit(repo_id, branch)
        repo = self.repos[repo_id]
        parent = header.get("parentCommit")
        if parent is not None and parent != repo["sha"][branch]:  # what the Hub answers
            self.rejected.append({"repo": repo_id, "branch": branch, "parent": parent,
                                  "files": added})
            return httpx.Response(412, json={
                "error": "A commit has happened since. Please refresh and try again."})
        repo["branches"][branch].update(added)
        sha = self._record(repo_id, branch)
        self.commits.append({"repo": repo_id, "branch": branch, "summary": header["summary"],
                             "files": added, "parent": parent})
        return httpx.Response(200, json={"commitUrl": f"https://huggingface.co/datasets/{repo_id}/commit/{sha}",
                                         "commitOid": sha, "pullRequestUrl": None})

    def files(self, repo_id: str, branch: str = "main") -> dict[str, bytes]:
        return self.repos[repo_id]["branches"][branch]


@pytest.fixture
def hf_home(tmp_path, monkeypatch) -> Path:
    """An empty huggingface_hub home/cache; online, token in HF_TOKEN."""
    home = tmp_path / "hf-home"
    monkeypatch.setattr(constants, "HF_HOME", str(home))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(home / "hub"))
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(home / "token"))
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(home / "stored_tokens"))
    monkeypatch.setattr(constants, "AGENT_HARNESSES_PATH", str(home / ".agent_harnesses.json"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN",
                "HF_OIDC_RESOURCE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    return home


def _install(handler: Any) -> None:
    _http.set_client_factory(lambda: httpx.Client(
        transport=httpx.MockTransport(handler), follow_redirects=True,
        event_hooks={"request": [_http.hf_request_event_hook]}))


@pytest.fixture
def fake_hub(hf_home) -> Iterator[FakeHub]:
    hub = FakeHub()
    _install(hub.handle)
    try:
        yield hub
    finally:
        _http.set_client_factory(_http.default_client_factory)


@pytest.fixture
def offline(hf_home, monkeypatch) -> Iterator[list[str]]:
    """Offline mode on; any request that still reached the transport is recorded (and fails)."""
    reached: list[str] = []

    def refuse(request: httpx.Request) -> httpx.Response:
        reached.append(str(request.url))
        raise httpx.ConnectError("no network in tests", request=request)

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    _install(refuse)
    try:
        yield reached
    finally:
        _http.set_client_factory(_http.default_client_factory)


def populate_cache(hf_home: Path, repo_id: str, files: dict[str, bytes], sha: str,
                   revision: str = "main") -> Path:
    """Write the huggingface_hub cache layout: blobs, snapshots/<sha>/… symlinks, refs/<rev>."""
    root = Path(constants.HF_HUB_CACHE) / f"datasets--{repo_id.replace('/', '--')}"
    (root / "refs").mkdir(parents=True, exist_ok=True)
    (root / "refs" / revision).write_text(sha)
    for name, data in files.items():
        blob = root / "blobs" / hashlib.sha256(data).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        link = root / "snapshots" / sha / name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    return root / "snapshots" / sha


# --------------------------------------------------------------------------- helpers

class CentroidEvaluator(condense.Evaluator):
    """Deterministic stand-in evaluator: nearest class centroid in pixel space."""

    name = "centroid-test"

    def evaluate(self, synset, data, *, seed=0, device="cpu", progress=None):  # type: ignore[no-untyped-def]
        pixels = synset.denormalize().flatten(1)
        k = len(data.class_names)
        centroids = torch.stack([pixels[synset.labels == c].mean(0) for c in range(k)])
        test = data.test.images.float().div(255).flatten(1)
        dist = torch.cdist(test, centroids)
        acc = (dist.argmin(1) == data.test.labels).float().mean().item()
        return condense.EvalResult("centroid-test", "nearest pixel centroid v1", {"k": k},
                                   {"accuracy": acc,
                                    "mean_distance": dist.min(1).values.mean().item()},
                                   (acc,))


class _EvalPlugin:
    @staticmethod
    @condense.hookimpl
    def register_evaluators(register):  # type: ignore[no-untyped-def]
        register(CentroidEvaluator)


@pytest.fixture
def centroid_eval() -> Iterator[str]:
    pm.register(_EvalPlugin, name="centroid-test-eval")
    try:
        yield "centroid-test"
    finally:
        pm.unregister(name="centroid-test-eval")


def make_artifact(folder: Path, ipc: int = 2, seed: int = 0, with_eval: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(seed)
    meta = {"method": "dm", "dataset": "tiny", "ipc": ipc, "seed": seed,
            "class_names": ["a", "b", "c"], "mean": [0.5], "std": [0.25], "image_size": [8, 8],
            "channels": 1, "zca": None, "label_type": "hard",
            "reproduce": f"condense run dm --dataset tiny --ipc {ipc}",
            "versions": {"condense": condense.__version__}}
    syn = condense.SynSet(torch.randn(3 * ipc, 1, 8, 8, generator=g),
                          torch.arange(3).repeat_interleave(ipc), meta)
    path = condense.save(syn, folder / f"dm-tiny-ipc{ipc}-seed{seed}.safetensors")
    if with_eval:
        record = {"artifact": str(path), "evaluator": "centroid-test",
                  "protocol": "nearest pixel centroid v1", "settings": {"k": 3},
                  "metrics": {"accuracy": 0.8125}, "per_run": [0.8125], "details": {}}
        path.with_name(f"{path.stem}.eval-centroid-test.json").write_text(json.dumps(record))
    return path


def front_matter(card: bytes) -> dict[str, Any]:
    return DatasetCard(card.decode()).data.to_dict()


# --------------------------------------------------------------------------- paths

@pytest.mark.parametrize("text, expected", [
    ("org/repo", HubPath("org/repo")),
    ("hf://datasets/org/repo/a.safetensors", HubPath("org/repo", "a.safetensors")),
    ("hf://datasets/org/repo/tiny/ipc2/dm.safetensors",
     HubPath("org/repo", "tiny/ipc2/dm.safetensors")),
    ("hf://datasets/org/repo@v1.0/a.safetensors", HubPath("org/repo", "a.safetensors", "v1.0")),
    ("hf://datasets/org/repo@refs/pr/3/a/b.safetensors",
     HubPath("org/repo", "a/b.safetensors", "refs/pr/3")),
    ("hf://datasets/org/repo@feat%2Fx/a.safetensors",
     HubPath("org/repo", "a.safetensors", "feat/x")),
    ("org/repo@v1.0/a.safetensors", HubPath("org/repo", "a.safetensors", "v1.0")),
    ("datasets/org/repo/a.safetensors", HubPath("org/repo", "a.safetensors")),
])
@pytest.mark.parametrize("fallback", [False, True], ids=["parse_hf_uri", "fallback"])
def test_parse(text, expected, fallback, monkeypatch):
    if fallback:  # huggingface_hub without parse_hf_uri: condense's copy of its grammar
        monkeypatch.setattr(_paths, "_split", lambda body, text: _paths._split_fallback(body, text))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # none of these spellings warns
        assert parse(text) == expected
    assert parse(expected.uri()) == expected  # uri() is read back as the same path


def test_parse_agrees_with_huggingface_hub():
    """What condense prints is what huggingface_hub reads as the same dataset repo and file."""
    from huggingface_hub.utils import parse_hf_uri

    hp = HubPath("my-lab/dm-tiny", "tiny/ipc2/seed0/dm.safetensors", "v1")
    uri = parse_hf_uri(hp.uri())
    assert (uri.type, uri.id, uri.revision, uri.path_in_repo) == \
        ("dataset", "my-lab/dm-tiny", "v1", "tiny/ipc2/seed0/dm.safetensors")


def test_old_spelling_warns_and_still_reads_a_dataset_repo():
    with pytest.warns(HubPathWarning, match=r"hf://org/repo/a.safetensors is huggingface_hub's "
                                            r"spelling of a model repository.*write "
                                            r"hf://datasets/org/repo/a.safetensors"):
        assert parse("hf://org/repo/a.safetensors") == HubPath("org/repo", "a.safetensors")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert parse("hf://org/repo/a.safetensors", warn=False) == HubPath("org/repo",
                                                                            "a.safetensors")


@pytest.mark.parametrize("text, match", [
    ("just-a-name", r"expected hf://datasets/ORG/REPO\[/PATH\]"),
    ("hf://datasets/org", r"expected hf://datasets/ORG/REPO"),
    ("hf://models/org/repo/x.safetensors", "dataset repositories"),
    ("hf://spaces/org/repo", "dataset repositories"),
    ("org/bad name", "malformed repository id"),
    ("org/-repo", "malformed repository id"),
    ("hf://datasets/org/re--po/x.safetensors", "malformed repository id"),
    ("org/repo/../x.safetensors", "not allowed"),
    ("hf://datasets/org/repo@/x.safetensors", "malformed Hub path"),
    ("hf://datasets/org/repo@v1/x.safetensors", "names revision 'v1' but --revision is 'v2'"),
])
def test_parse_rejects(text, match):
    with pytest.raises(condense.HubError, match=match):
        parse(text, revision="v2" if "@v1" in text else None)


def test_local_names_never_collide():
    """`eval`/`show` of hf:// sets write into the current folder: one name per set."""
    sets = ["hf://datasets/my-lab/dm-tiny/tiny/ipc2/seed0/dm.safetensors",
            "hf://datasets/my-lab/dm-tiny/tiny/ipc2/seed1/dm.safetensors",
            "hf://datasets/my-lab/dm-tiny@v1/tiny/ipc2/seed0/dm.safetensors",
            "hf://datasets/other/dm-tiny/tiny/ipc2/seed0/dm.safetensors",
            "hf://datasets/my-lab/dm-tiny/tiny-ipc2/seed0/dm.safetensors",
            "hf://datasets/my-lab/dm-tiny/tiny--ipc2/seed0/dm.safetensors",
            "hf://datasets/my-lab/dm-tiny/tiny/ipc2--seed0/dm.safetensors",
            "hf://datasets/my-lab/dm-tiny/tiny/ipc2/seed0/dm.other.safetensors"]
    stems = [local_stem(s) for s in sets]
    assert len(set(stems)) == len(stems), stems
    assert stems[0] == "my-lab--dm-tiny--tiny--ipc2--seed0--dm"
    assert stems[2] == "my-lab--dm-tiny@v1--tiny--ipc2--seed0--dm"
    # the old spelling names the same file as the new one
    assert local_stem("hf://my-lab/dm-tiny/tiny/ipc2/seed0/dm.safetensors") == stems[0]
    assert condense.results_path(sets[0], "accuracy") == \
        Path("my-lab--dm-tiny--tiny--ipc2--seed0--dm.eval-accuracy.json")
    assert condense.results_path("runs/dm.safetensors", "accuracy") == \
        Path("runs/dm.eval-accuracy.json")


def test_default_layout():
    assert default_path_in_repo({"dataset": "cifar10", "ipc": 10, "seed": 3, "method": "datadam"}) \
        == "cifar10/ipc10/seed3/datadam.safetensors"
    assert default_path_in_repo({"dataset": "cifar10", "ipc": 10, "seed": None, "method": "dm"}) \
        == "cifar10/ipc10/dm.safetensors"


# --------------------------------------------------------------------------- push

SET = "tiny/ipc2/seed0/dm.safetensors"


def test_push_uploads_artifact_eval_preview_and_card(tmp_path, fake_hub):
    work = tmp_path / "work"
    art = make_artifact(work)
    before = art.read_bytes()
    result = push(art, "my-lab/dm-tiny", private=True)
    assert result.url == f"https://huggingface.co/datasets/my-lab/dm-tiny/blob/main/{SET}"
    assert result.uri == f"hf://datasets/my-lab/dm-tiny/{SET}"
    assert result.license == "unknown" and result.attempts == 1  # no licence known for `tiny`
    assert fake_hub.repos["my-lab/dm-tiny"]["private"] is True
    assert len(fake_hub.commits) == 1
    commit = fake_hub.commits[0]
    assert commit["summary"] == f"Upload {SET} with condense"
    created = next(iter(fake_hub.repos["my-lab/dm-tiny"]["history"]))
    assert commit["parent"] == created  # committed on top of the head it read
    assert set(commit["files"]) == {SET, "tiny/ipc2/seed0/dm.eval-centroid-test.json",
                                    "tiny/ipc2/seed0/dm.preview.zip",
                                    "condense-index.json", "README.md"}
    assert commit["files"][SET] == before == art.read_bytes()
    # the eval record names the uploaded set, not the local file, and holds no local path
    uploaded = json.loads(commit["files"]["tiny/ipc2/seed0/dm.eval-centroid-test.json"])
    local = json.loads(art.with_name(f"{art.stem}.eval-centroid-test.json").read_text())
    assert local["artifact"] == str(art)
    assert uploaded == {**local, "artifact": result.uri}
    for name, data in commit["files"].items():
        if name != SET:
            assert str(tmp_path).encode() not in data, name
    card = commit["files"]["README.md"]
    assert fake_hub.validated == [card.decode()]
    fm = front_matter(card)
    assert fm["task_categories"] == ["image-classification"]
    assert {"dataset-distillation", "ipc-2", "dm"} <= set(fm["tags"])
    assert fm["source_datasets"] == ["tiny"] and fm["license"] == "unknown"
    assert "viewer" not in fm
    assert fm["configs"] == [{
        "config_name": "tiny-ipc2-seed0-dm",
        "data_files": [{"split": "train", "path": "tiny/ipc2/seed0/dm.preview.zip"}],
        "features": [{"name": "image", "dtype": "image"},
                     {"name": "label", "dtype": {"class_label": {"names": {
                         "0": "a", "1": "b", "2": "c"}}}}]}]
    text = card.decode()
    assert text.count("<!-- condense:begin -->") == 1 and text.count("<!-- condense:end -->") == 1
    for needle in ("https://arxiv.org/abs/2110.04181",  # DM's paper
                   "@inproceedings{zhao2023dm,",  # and its BibTeX
                   f'condense.load("hf://datasets/my-lab/dm-tiny/{SET}")',
                   f"condense eval hf://datasets/my-lab/dm-tiny/{SET}",
                   f'hf_hub_download("my-lab/dm-tiny", "{SET}", repo_type="dataset")',
                   'load_dataset("my-lab/dm-tiny", "tiny-ipc2-seed0-dm", split="train")',
                   "safe_open", "pixels = images * std + mean",
                   f"| `{SET}` | centroid-test | nearest pixel centroid v1 | "
                   "accuracy 0.8125 | k=3 |",
                   "condense run dm --dataset tiny --ipc 2",
                   "sets distilled from `tiny`: **unknown**"):
        assert needle in text, needle
    assert "hf://my-lab/" not in text  # only huggingface_hub's spelling is printed
    index = json.loads(commit["files"]["condense-index.json"])
    (entry,) = index["variants"]
    assert entry["path"] == SET and entry["num_images"] == 6
    assert entry["preview"] == "tiny/ipc2/seed0/dm.preview.zip" and entry["license"] == "unknown"
    assert entry["evaluations"][0]["metrics"] == {"accuracy": 0.8125}
    assert index["generated_front_matter"]["configs"] == fm["configs"]
    # the token went in the Authorization header and nowhere else
    writes = [r for r in fake_hub.requests if r.method == "POST"]
    assert writes and all(r.headers.get("authorization") == f"Bearer {TOKEN}" for r in writes)
    assert not any(TOKEN.encode() in data for data in commit["files"].values())
    assert sorted(p.name for p in work.iterdir()) == [f"{art.stem}.eval-centroid-test.json",
                                                       art.name]


def test_preview_is_an_image_folder_of_the_pixels(tmp_path, fake_hub):
    """`datasets`' imagefolder layout: PNGs + metadata.jsonl; the pixels are the set's, 8-bit."""
    from PIL import Image

    art = make_artifact(tmp_path)
    push(art, "my-lab/dm-tiny")
    data = fake_hub.files("my-lab/dm-tiny")["tiny/ipc2/seed0/dm.preview.zip"]
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        names = zf.namelist()
        rows = [json.loads(line) for line in zf.read("metadata.jsonl").decode().splitlines()]
        images = [Image.open(io.BytesIO(zf.read(r["file_name"]))) for r in rows]
    syn = condense.load(art)
    assert names == [f"{i:05d}.png" for i in range(6)] + ["metadata.jsonl"]
    assert [r["label"] for r in rows] == syn.labels.tolist()
    expected = (syn.denormalize() * 255).round().to(torch.uint8)
    for image, pixels in zip(images, expected, strict=True):
        assert image.mode == "L" and image.size == (8, 8)
        assert torch.equal(torch.from_numpy(numpy.array(image)), pixels[0])
    push(art, "my-lab/dm-tiny")  # the same set again: byte-identical preview
    assert fake_hub.commits[-1]["files"]["tiny/ipc2/seed0/dm.preview.zip"] == data


def test_load_dataset_reads_the_sets_not_the_eval_records(tmp_path, fake_hub):
    """`datasets.load_dataset` on a pushed repository: the distilled images and labels, one
    config per set; the eval JSON is no `test` split. (Needs `datasets`, not a condense
    dependency: skipped without it.)"""
    datasets = pytest.importorskip("datasets")
    if not hasattr(datasets, "load_dataset"):  # tests/datasets/, not 🤗 datasets
        pytest.skip("🤗 datasets is not installed")
    push(make_artifact(tmp_path / "a"), "my-lab/dm-tiny")
    repo = tmp_path / "repo"
    for name, data in fake_hub.files("my-lab/dm-tiny").items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_bytes(data)
    ds = datasets.load_dataset(str(repo), "tiny-ipc2-seed0-dm")
    assert list(ds) == ["train"] and ds["train"].num_rows == 6
    assert ds["train"].features["label"].names == ["a", "b", "c"]
    push(make_artifact(tmp_path / "b", seed=1), "my-lab/dm-tiny")
    for name, data in fake_hub.files("my-lab/dm-tiny").items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_bytes(data)
    with pytest.raises(ValueError, match="tiny-ipc2-seed1-dm"):  # which set? it says
        datasets.load_dataset(str(repo))


def test_second_push_keeps_the_first_in_the_card(tmp_path, fake_hub):
    push(make_artifact(tmp_path, ipc=2), "my-lab/dm-tiny")
    second = push(make_artifact(tmp_path, ipc=3, seed=1, with_eval=False), "my-lab/dm-tiny",
                  message="add IPC 3")
    assert fake_hub.commits[-1]["summary"] == "add IPC 3"
    assert second.path_in_repo == "tiny/ipc3/seed1/dm.safetensors"
    files = fake_hub.files("my-lab/dm-tiny")
    index = json.loads(files["condense-index.json"])
    assert [v["path"] for v in index["variants"]] == [SET, "tiny/ipc3/seed1/dm.safetensors"]
    fm = front_matter(files["README.md"])
    assert {"ipc-2", "ipc-3"} <= set(fm["tags"])
    assert [c["config_name"] for c in fm["configs"]] == ["tiny-ipc2-seed0-dm",
                                                         "tiny-ipc3-seed1-dm"]
    assert "accuracy 0.8125" in files["README.md"].decode()  # the first set's result is kept
    # re-pushing the same set replaces its entry instead of duplicating it
    push(tmp_path / "dm-tiny-ipc2-seed0.safetensors", "my-lab/dm-tiny")
    index = json.loads(fake_hub.files("my-lab/dm-tiny")["condense-index.json"])
    assert len(index["variants"]) == 2


def test_every_pushed_set_has_its_own_files(tmp_path, fake_hub):
    """Seeds, IPCs, methods and imported sets land at different paths: nothing is overwritten."""
    arts = [make_artifact(tmp_path / "s0", seed=0), make_artifact(tmp_path / "s1", seed=1),
            make_artifact(tmp_path / "i3", ipc=3)]
    results = [push(a, "my-lab/dm-tiny") for a in arts]
    files = fake_hub.files("my-lab/dm-tiny")
    for art, result in zip(arts, results, strict=True):
        assert files[result.path_in_repo] == art.read_bytes()
    assert len({r.path_in_repo for r in results}) == 3
    assert len({r.files for r in results}) == 3
    assert default_path_in_repo({"dataset": "tiny", "ipc": 2, "seed": None, "method": "dm"}) \
        not in {r.path_in_repo for r in results}


# --------------------------------------------------------------------------- licences, cards

def test_license_defaults_to_the_source_dataset_and_can_be_set(tmp_path, fake_hub):
    art = make_artifact(tmp_path)
    syn = condense.load(art)
    syn.meta["dataset"] = "fashion-mnist"
    fm_art = condense.save(syn, tmp_path / "fm.safetensors")
    push(fm_art, "my-lab/fm")
    fm = front_matter(fake_hub.files("my-lab/fm")["README.md"])
    text = fake_hub.files("my-lab/fm")["README.md"].decode()
    assert fm["license"] == "mit"
    assert fm["source_datasets"] == ["zalando-datasets/fashion_mnist"]
    assert "Zalando SE, MIT licence" in text and "@article{xiao2017fashionmnist," in text
    syn.meta["dataset"] = "svhn"
    push(condense.save(syn, tmp_path / "svhn.safetensors"), "my-lab/svhn")
    fm = front_matter(fake_hub.files("my-lab/svhn")["README.md"])
    assert (fm["license"], fm["license_name"]) == ("other", "svhn-non-commercial")
    result = push(art, "my-lab/dm-tiny", license="CC-BY-4.0")
    assert result.license == "cc-by-4.0"
    text = fake_hub.files("my-lab/dm-tiny")["README.md"].decode()
    assert front_matter(text.encode())["license"] == "cc-by-4.0"
    assert "chosen with `condense push --license`" in text
    with pytest.raises(condense.HubError, match="give a Hub licence id"):
        push(art, "my-lab/dm-tiny", license="my licence")


def test_hand_edits_outside_the_generated_block_survive_a_push(tmp_path, fake_hub):
    push(make_artifact(tmp_path / "a"), "my-lab/dm-tiny")
    card = fake_hub.files("my-lab/dm-tiny")["README.md"].decode()
    head, body = card.split("\n---\n", 1)
    edited = (head.replace("license: unknown", "license: cc-by-4.0")
              + "\nlanguage:\n- en\n---\nIntro written by hand.\n" + body
              + "\n## Acknowledgements\n\nThanks to the lab.\n")
    edited = edited.replace("- synthetic\n", "- synthetic\n- my-own-tag\n")
    edited = edited.replace("# dm distilled tiny", "# dm distilled tiny (edited inside)")
    fake_hub.files("my-lab/dm-tiny")["README.md"] = edited.encode()
    fake_hub._record("my-lab/dm-tiny", "main")  # the edit is a commit on the Hub
    push(make_artifact(tmp_path / "b", seed=1), "my-lab/dm-tiny")
    new = fake_hub.files("my-lab/dm-tiny")["README.md"].decode()
    fm = front_matter(new.encode())
    assert new.split("---\n", 2)[2].startswith("Intro written by hand.\n")
    assert new.rstrip().endswith("## Acknowledgements\n\nThanks to the lab.")
    assert fm["license"] == "cc-by-4.0" and fm["language"] == ["en"]  # hand edits kept
    assert "my-own-tag" in fm["tags"] and "ipc-2" in fm["tags"]
    assert len(fm["configs"]) == 2  # generated keys still follow the index
    assert "(edited inside)" not in new  # the marked block is regenerated
    assert "tiny/ipc2/seed1/dm.safetensors" in new
    assert new.count("<!-- condense:begin -->") == 1
    # an explicit --license is newer than the hand edit: it wins
    push(make_artifact(tmp_path / "c", seed=2), "my-lab/dm-tiny", license="mit")
    fm = front_matter(fake_hub.files("my-lab/dm-tiny")["README.md"])
    assert fm["license"] == ["unknown", "mit"] and fm["language"] == ["en"]


def test_a_readme_condense_did_not_write_is_kept(tmp_path, fake_hub):
    fake_hub.seed("my-lab/dm-tiny", {"README.md": b"---\nlicense: mit\n---\n# My sets\n\nHello.\n"})
    push(make_artifact(tmp_path), "my-lab/dm-tiny")
    new = fake_hub.files("my-lab/dm-tiny")["README.md"].decode()
    assert front_matter(new.encode())["license"] == "mit"
    body = new.split("---\n", 2)[2]
    assert body.startswith("# My sets\n\nHello.\n\n<!-- condense:begin -->")


def test_a_card_from_an_older_condense_is_replaced(tmp_path, fake_hub):
    """No markers and no `generated_front_matter`: all of it was generated, none of it kept."""
    old_index = {"condense_hub_index": 1, "variants": []}
    fake_hub.seed("my-lab/dm-tiny", {
        "README.md": b"---\nviewer: false\nsource_datasets:\n- tiny\n---\n\n# dm distilled\n",
        "condense-index.json": json.dumps(old_index).encode()})
    push(make_artifact(tmp_path), "my-lab/dm-tiny")
    new = fake_hub.files("my-lab/dm-tiny")["README.md"].decode()
    assert "viewer" not in front_matter(new.encode())
    assert new.split("---\n", 2)[2].startswith("\n<!-- condense:begin -->")


def test_a_card_with_unreadable_yaml_is_not_overwritten(tmp_path, fake_hub):
    fake_hub.seed("my-lab/dm-tiny", {"README.md": b"---\nlicense: [mit\n---\nMine.\n"})
    with pytest.raises(condense.HubError, match="README.md: its YAML front matter cannot be read"):
        push(make_artifact(tmp_path), "my-lab/dm-tiny")
    assert fake_hub.commits == []


# --------------------------------------------------------------------------- concurrent pushes

def test_concurrent_pushes_keep_both_entries(tmp_path, fake_hub, monkeypatch):
    """Two pushes race: the second lands between the first's read and commit. The first commit
    is refused (stale parent, HTTP 412 as on the Hub), re-reads and keeps both sets."""
    monkeypatch.setattr(_push, "_sleep", lambda s: None)
    first, second = make_artifact(tmp_path / "s0", seed=0), make_artifact(tmp_path / "s1", seed=1)
    push(make_artifact(tmp_path / "i3", ipc=3), "my-lab/dm-tiny")  # the repository exists

    def other_push_lands_first(repo_id: str, branch: str) -> None:
        fake_hub.before_commit = None
        push(second, "my-lab/dm-tiny")  # a whole other push, through the same fake Hub

    fake_hub.before_commit = other_push_lands_first
    result = push(first, "my-lab/dm-tiny")
    assert result.attempts == 2
    assert len(fake_hub.rejected) == 1  # the first try was refused for its stale parent
    files = fake_hub.files("my-lab/dm-tiny")
    index = json.loads(files["condense-index.json"])
    paths = ["tiny/ipc2/seed0/dm.safetensors", "tiny/ipc2/seed1/dm.safetensors",
             "tiny/ipc3/seed0/dm.safetensors"]
    assert [v["path"] for v in index["variants"]] == paths
    card = files["README.md"].decode()
    assert all(f"| `{p}` |" in card for p in paths)
    assert all(c["parent"] for c in fake_hub.commits)  # every commit named its parent


def test_a_push_that_keeps_losing_the_race_stops_with_a_clear_error(tmp_path, fake_hub,
                                                                     monkeypatch):
    monkeypatch.setattr(_push, "_sleep", lambda s: None)
    art = make_artifact(tmp_path)
    push(make_artifact(tmp_path / "other", ipc=3), "my-lab/dm-tiny")
    index_before = fake_hub.files("my-lab/dm-tiny")["condense-index.json"]

    def someone_else_commits(repo_id: str, branch: str) -> None:
        fake_hub.files(repo_id, branch)["other.txt"] = os.urandom(8)
        fake_hub._record(repo_id, branch)

    fake_hub.before_commit = someone_else_commits
    with pytest.raises(condense.HubError, match=r"other commits kept landing on main while pushing "
                                                r"tiny/ipc2/seed0/dm.safetensors \(5 attempts\); "
                                                r"nothing was changed locally, push again"):
        push(art, "my-lab/dm-tiny")
    assert len(fake_hub.rejected) == _push.ATTEMPTS
    assert fake_hub.files("my-lab/dm-tiny")["condense-index.json"] == index_before


def test_push_leaves_out_records_of_an_earlier_set(tmp_path, fake_hub):
    from condense.records import DIGEST_KEY
    from condense.store import content_digest

    art = make_artifact(tmp_path)
    current = art.with_name(f"{art.stem}.eval-centroid-test.json")
    record = json.loads(current.read_text())
    current.write_text(json.dumps({**record, DIGEST_KEY: content_digest(art)}))
    stale = art.with_name(f"{art.stem}.eval-accuracy.json")
    stale.write_text(json.dumps({**record, "evaluator": "accuracy", DIGEST_KEY: "0" * 64}))
    result = push(art, "my-lab/dm-tiny")
    files = fake_hub.commits[0]["files"]
    assert "tiny/ipc2/seed0/dm.eval-centroid-test.json" in files
    assert "tiny/ipc2/seed0/dm.eval-accuracy.json" not in files
    assert result.ignored == (str(stale),)
    r = CliRunner().invoke(cli, ["push", str(art), "my-lab/dm-tiny"])
    assert r.exit_code == 0, r.output
    assert f"note: ignoring {stale}: it was made for an earlier set at that path" in r.stderr


def test_push_to_a_branch(tmp_path, fake_hub):
    result = push(make_artifact(tmp_path), "my-lab/dm-tiny", revision="v1")
    assert "tiny/ipc2/seed0/dm.safetensors" in fake_hub.files("my-lab/dm-tiny", "v1")
    assert "tiny/ipc2/seed0/dm.safetensors" not in fake_hub.files("my-lab/dm-tiny", "main")
    assert result.uri == "hf://datasets/my-lab/dm-tiny@v1/tiny/ipc2/seed0/dm.safetensors"
    assert "/blob/v1/" in result.url
    card = fake_hub.files("my-lab/dm-tiny", "v1")["README.md"].decode()
    assert f'condense.load("{result.uri}")' in card and 'revision="v1")' in card


def test_push_without_token_makes_no_request(tmp_path, fake_hub, monkeypatch):
    monkeypatch.delenv("HF_TOKEN")
    art = make_artifact(tmp_path)
    with pytest.raises(condense.HubError,
                       match="no Hugging Face token: log in with `hf auth login`"):
        push(art, "my-lab/dm-tiny")
    assert fake_hub.requests == []


def test_network_failure_mid_upload_leaves_artifact_untouched(tmp_path, fake_hub):
    work = tmp_path / "work"
    art = make_artifact(work)
    before = (art.read_bytes(), os.stat(art).st_mtime_ns, sorted(os.listdir(work)))
    fake_hub.fail_on = "/commit/"
    with pytest.raises(condense.HubError) as info:
        push(art, "my-lab/dm-tiny")
    message = str(info.value)
    assert "\n" not in message and TOKEN not in message
    assert message.startswith("network failure talking to the Hub about my-lab/dm-tiny")
    assert "nothing was changed locally, retry" in message
    assert (art.read_bytes(), os.stat(art).st_mtime_ns, sorted(os.listdir(work))) == before
    assert fake_hub.files("my-lab/dm-tiny") == {".gitattributes": b"*.safetensors filter=lfs\n"}


def test_push_refuses_bad_input_before_any_request(tmp_path, fake_hub):
    not_artifact = tmp_path / "x.safetensors"
    not_artifact.write_bytes(b"nope")
    with pytest.raises(condense.ArtifactError):
        push(not_artifact, "my-lab/dm-tiny")
    with pytest.raises(condense.HubError, match="malformed repository id"):
        push(make_artifact(tmp_path), "dm-tiny")
    assert fake_hub.requests == []


def test_push_refused_by_the_hub(tmp_path, fake_hub):
    def forbidden(request: httpx.Request) -> httpx.Response:
        return httpx.Response(403, json={"error": "You don't have the rights to create a dataset"})

    _install(forbidden)
    with pytest.raises(condense.HubError, match="your token lacks write access to other-org/x"):
        push(make_artifact(tmp_path), "other-org/x")


# --------------------------------------------------------------------------- pull

def test_pull_from_prepopulated_cache_offline(tmp_path, offline, hf_home):
    art = make_artifact(tmp_path)
    sha = "a" * 40
    snapshot = populate_cache(hf_home, "my-lab/dm-tiny", {
        "tiny/ipc2/seed0/dm.safetensors": art.read_bytes(),
        "README.md": b"---\nviewer: false\n---\n"}, sha)
    local = pull("hf://datasets/my-lab/dm-tiny/tiny/ipc2/seed0/dm.safetensors")
    assert local == snapshot / "tiny/ipc2/seed0/dm.safetensors"
    assert local.read_bytes() == art.read_bytes()
    syn = condense.load("hf://datasets/my-lab/dm-tiny/tiny/ipc2/seed0/dm.safetensors")
    assert torch.equal(syn.images, condense.load(art).images)
    folder = pull("my-lab/dm-tiny")
    assert folder == snapshot and (folder / "README.md").exists()
    assert offline == []  # nothing reached the network


def test_pull_offline_without_cached_copy(offline):
    with pytest.raises(condense.HubError,
                       match=r"my-lab/none/x.safetensors \(revision main\) is not in "
                             r"the Hugging Face cache and offline mode is on"):
        pull("my-lab/none/x.safetensors")
    assert offline == []


def test_pull_online_then_offline(tmp_path, fake_hub, monkeypatch):
    art = make_artifact(tmp_path)
    fake_hub.seed("my-lab/dm-tiny", {"tiny/ipc2/seed0/dm.safetensors": art.read_bytes()})
    local = pull("my-lab/dm-tiny/tiny/ipc2/seed0/dm.safetensors")
    assert local.read_bytes() == art.read_bytes() and str(local).startswith(constants.HF_HUB_CACHE)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    fake_hub.requests.clear()
    assert pull("my-lab/dm-tiny/tiny/ipc2/seed0/dm.safetensors") == local
    assert fake_hub.requests == []


class _NoSleep:
    """``time`` for huggingface_hub's retry loop, without the waiting."""

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)

    @staticmethod
    def sleep(seconds: float) -> None:
        pass


def test_pull_errors(tmp_path, fake_hub, monkeypatch):
    fake_hub.seed("my-lab/dm-tiny", {"a.safetensors": b"x"})
    with pytest.raises(condense.HubError, match=r"my-lab/dm-tiny \(revision main\) has no file "
                                                r"'missing.safetensors'; list its files at "
                                                r"https://huggingface.co/datasets/my-lab/dm-tiny/tree/main"):
        pull("my-lab/dm-tiny/missing.safetensors")
    with pytest.raises(condense.HubError, match="no dataset repository my-lab/nope on the Hub"):
        pull("my-lab/nope/a.safetensors")
    with pytest.raises(condense.HubError, match="has no revision 'v9'"):
        pull("my-lab/dm-tiny/a.safetensors", revision="v9")
    fake_hub.fail_on = "/resolve/"
    monkeypatch.setattr(_http, "time", _NoSleep())  # huggingface_hub retries network errors
    with pytest.raises(condense.HubError,
                       match="could not reach the Hub to download "
                             "my-lab/dm-tiny/b.safetensors and there is no cached copy"):
        pull("my-lab/dm-tiny/b.safetensors")


# --------------------------------------------------------------------------- CLI end to end

def test_run_push_pull_eval_gives_the_same_numbers(tmp_path, fake_hub, hf_home, centroid_eval,
                                                   monkeypatch):
    """`condense run` → `eval` → `push` → (cache) → `eval hf://…` offline: identical results."""
    runner = CliRunner()
    art = tmp_path / "dm-tiny.safetensors"
    r = runner.invoke(cli, [*RUN_TINY, "--out", str(art)])
    assert r.exit_code == 0, r.output
    r = runner.invoke(cli, ["eval", str(art), "--evaluator", centroid_eval, "--json",
                            "--no-progress"])
    assert r.exit_code == 0, r.output
    local_result = json.loads(r.stdout)
    assert art.with_name("dm-tiny.eval-centroid-test.json").exists()

    r = runner.invoke(cli, ["push", str(art), "my-lab/dm-tiny", "--message", "first set",
                            "--license", "cc-by-4.0"])
    assert r.exit_code == 0, r.output
    url = r.stdout.strip()
    assert url == f"https://huggingface.co/datasets/my-lab/dm-tiny/blob/main/{SET}"
    uri = f"hf://datasets/my-lab/dm-tiny/{SET}"
    assert f"load it with: condense eval {uri}\n" in r.stderr and "licence: cc-by-4.0" in r.stderr
    assert TOKEN not in r.output
    uploaded = fake_hub.files("my-lab/dm-tiny")
    assert uploaded[SET] == art.read_bytes()
    assert "accuracy" in uploaded["README.md"].decode()
    assert front_matter(uploaded["README.md"])["license"] == "cc-by-4.0"
    record = json.loads(uploaded["tiny/ipc2/seed0/dm.eval-centroid-test.json"])
    assert record["artifact"] == uri  # not the local path `condense eval` wrote

    # the same bytes, now only in the huggingface_hub cache; the network is gone
    populate_cache(hf_home, "my-lab/dm-tiny", uploaded,
                   fake_hub.repos["my-lab/dm-tiny"]["sha"]["main"])
    _http.set_client_factory(_http.default_client_factory)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    for target in (uri, uri[len("hf://datasets/"):]):  # pull takes a bare REPO_ID/PATH too
        r = runner.invoke(cli, ["pull", target])
        assert r.exit_code == 0, r.output
        assert Path(r.stdout.strip()).read_bytes() == art.read_bytes()
    monkeypatch.chdir(tmp_path)
    r = runner.invoke(cli, ["eval", uri, "--evaluator", centroid_eval, "--json", "--no-progress"])
    assert r.exit_code == 0, r.output
    remote_result = json.loads(r.stdout)
    assert remote_result["artifact"] == uri
    for key in ("evaluator", "protocol", "settings", "metrics", "per_run"):
        assert remote_result[key] == local_result[key], key
    # written in the current folder under a name that says which set it is
    written = tmp_path / "my-lab--dm-tiny--tiny--ipc2--seed0--dm.eval-centroid-test.json"
    assert json.loads(written.read_text())["artifact"] == uri
    r = runner.invoke(cli, ["show", uri, "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["method"] == "dm"
    assert (tmp_path / "my-lab--dm-tiny--tiny--ipc2--seed0--dm.png").exists()


def test_old_spelling_on_the_command_line_warns_once_and_works(tmp_path, offline, hf_home):
    art = make_artifact(tmp_path)
    populate_cache(hf_home, "my-lab/dm-tiny", {SET: art.read_bytes()}, "b" * 40)
    r = CliRunner().invoke(cli, ["pull", f"hf://my-lab/dm-tiny/{SET}"])
    assert r.exit_code == 0, r.output
    assert Path(r.stdout.strip()).read_bytes() == art.read_bytes()
    assert r.stderr.count("warning:") == 1, r.stderr
    assert (f"warning: hf://my-lab/dm-tiny/{SET} is huggingface_hub's spelling of a model "
            f"repository; condense still reads it as a dataset repository, but write "
            f"hf://datasets/my-lab/dm-tiny/{SET}") in r.stderr
    with pytest.warns(HubPathWarning):  # the library warns (the CLI shows it, above)
        assert condense.load(f"hf://my-lab/dm-tiny/{SET}").meta["method"] == "dm"


def test_import_from_the_hub(tmp_path, fake_hub):
    """`condense import hf://datasets/…`: pulled first, the labels file beside it too."""
    images = torch.randn(6, 1, 28, 28)
    labels = torch.arange(3).repeat_interleave(2)
    buf_i, buf_l = io.BytesIO(), io.BytesIO()
    torch.save(images, buf_i)
    torch.save(labels, buf_l)
    fake_hub.seed("someone/legacy-sets", {"run1/images_best.pt": buf_i.getvalue(),
                                         "run1/labels_best.pt": buf_l.getvalue(),
                                         "run1/other.bin": b"not fetched"})
    out = tmp_path / "imported.safetensors"
    r = CliRunner().invoke(cli, ["import", "hf://datasets/someone/legacy-sets/run1/images_best.pt",
                                 "--format", "mtt", "--dataset", "fashion-mnist",
                                 "--out", str(out)])
    assert r.exit_code == 0, r.output
    syn = condense.load(out)
    assert torch.equal(syn.images, images) and torch.equal(syn.labels, labels)
    assert syn.meta["imported"]["source"] == \
        "hf://datasets/someone/legacy-sets/run1/images_best.pt"
    fetched = [r.url.path for r in fake_hub.requests if "/resolve/" in r.url.path]
    assert not any(p.endswith("other.bin") for p in fetched)
    r = CliRunner().invoke(cli, ["import", "hf://datasets/someone/legacy-sets/run1/nope.pt",
                                 "--format", "mtt", "--dataset", "fashion-mnist"])
    assert r.exit_code == 1 and "has no file 'run1/nope.pt'" in r.stderr


def test_cli_errors_are_one_line(tmp_path, offline):
    runner = CliRunner()
    for args, needle in ((["pull", "not-a-repo-id"], "malformed Hub path"),
                         (["pull", "my-lab/x/a.safetensors"], "offline mode is on"),
                         (["eval", "hf://datasets/my-lab/x/a.safetensors"],
                          "not in the Hugging Face cache"),
                         (["push", str(make_artifact(tmp_path)), "bad id"],
                          "malformed repository id"),
                         (["import", "missing.pt", "--format", "mtt", "--dataset", "mnist"],
                          "does not exist")):
        r = runner.invoke(cli, args)
        assert r.exit_code in (1, 2), (args, r.output)
        assert needle in r.stderr, r.stderr
        if r.exit_code == 1:
            assert r.stderr.startswith("Error:")
            assert r.stderr.strip().count("\n") == 0 or len(r.stderr.strip()) > 80  # rich wraps
        assert r.stdout == ""


def test_condense_hub_is_reachable_after_import_condense():
    """`import condense` then `condense.hub.push`: no explicit `import condense.hub` needed."""
    code = "import condense; print(condense.hub.push.__module__, condense.hub.pull.__name__)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, ("condense.hub must be one of the lazy submodules of "
                                  "condense/__init__.py (like loop, networks): " + proc.stderr)
    assert proc.stdout.split() == ["condense.hub._push", "pull"]
