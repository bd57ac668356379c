"""The Hugging Face Hub, offline.

Push goes through the real huggingface_hub code with only the HTTP boundary replaced (an
in-memory Hub behind ``httpx`` ``MockTransport``, installed with ``set_client_factory``); pull and
``hf://`` loading read a pre-populated huggingface_hub cache with offline mode on.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from click.testing import CliRunner

import condense
from condense.cli import cli
from condense.hub import HubPath, default_path_in_repo, parse, pull, push
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
        self.fail_on: str | None = None
        self.validated: list[str] = []

    def seed(self, repo_id: str, files: dict[str, bytes]) -> None:
        self.repos[repo_id] = {"private": False, "branches": {"main": dict(files)}, "sha": {}}
        self.repos[repo_id]["sha"]["main"] = self._sha(repo_id, "main")

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
                repo["sha"][rest] = self._sha(repo_id, rest)
                return httpx.Response(200, json={})
            if action == "commit":
                return self._commit(repo_id, rest, request)
        if parts[0] == "datasets" and "resolve" in parts:
            i = parts.index("resolve")
            repo_id, rev, name = "/".join(parts[1:i]), parts[i + 1], "/".join(parts[i + 2:])
            repo = self.repos.get(repo_id)
            if repo is None:
                return httpx.Response(401, headers={"X-Error-Code": "RepoNotFound"},
                                      json={"error": "Repository not found"})
            files = repo["branches"].get(rev)
            if files is None:
                return httpx.Response(404, headers={"X-Error-Code": "RevisionNotFound"},
                                      json={"error": "Invalid rev id"})
            sha = repo["sha"][rev]
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
        repo = self.repos[repo_id]
        repo["branches"][branch].update(added)
        repo["sha"][branch] = self._sha(repo_id, branch)
        self.commits.append({"repo": repo_id, "branch": branch, "summary": header["summary"],
                             "files": added})
        sha = repo["sha"][branch]
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
    ("hf://org/repo/tiny/ipc2/dm.safetensors", HubPath("org/repo", "tiny/ipc2/dm.safetensors")),
    ("hf://datasets/org/repo/a.safetensors", HubPath("org/repo", "a.safetensors")),
    ("org/repo@v1.0/a.safetensors", HubPath("org/repo", "a.safetensors", "v1.0")),
])
def test_parse(text, expected):
    assert parse(text) == expected


@pytest.mark.parametrize("text, match", [
    ("just-a-name", "expected \\[hf://\\]ORG/REPO"),
    ("hf://models/org/repo/x.safetensors", "dataset repositories"),
    ("org/bad name", "malformed repository id"),
    ("org/-repo", "malformed repository id"),
    ("org/re--po", "malformed repository id"),
    ("org/repo/../x.safetensors", "not allowed"),
])
def test_parse_rejects(text, match):
    with pytest.raises(condense.HubError, match=match):
        parse(text)


def test_default_layout():
    assert default_path_in_repo({"dataset": "cifar10", "ipc": 10, "seed": 3, "method": "datadam"}) \
        == "cifar10/ipc10/seed3/datadam.safetensors"
    assert default_path_in_repo({"dataset": "cifar10", "ipc": 10, "seed": None, "method": "dm"}) \
        == "cifar10/ipc10/dm.safetensors"


# --------------------------------------------------------------------------- push

def test_push_uploads_artifact_eval_and_card(tmp_path, fake_hub):
    work = tmp_path / "work"
    art = make_artifact(work)
    before = art.read_bytes()
    result = push(art, "my-lab/dm-tiny", private=True)
    assert result.url == "https://huggingface.co/datasets/my-lab/dm-tiny/blob/main/tiny/ipc2/seed0/dm.safetensors"
    assert result.uri == "hf://my-lab/dm-tiny/tiny/ipc2/seed0/dm.safetensors"
    assert fake_hub.repos["my-lab/dm-tiny"]["private"] is True
    assert len(fake_hub.commits) == 1
    commit = fake_hub.commits[0]
    assert commit["summary"] == "Upload tiny/ipc2/seed0/dm.safetensors with condense"
    assert set(commit["files"]) == {"tiny/ipc2/seed0/dm.safetensors",
                                    "tiny/ipc2/seed0/dm.eval-centroid-test.json",
                                    "condense-index.json", "README.md"}
    assert commit["files"]["tiny/ipc2/seed0/dm.safetensors"] == before == art.read_bytes()
    record = art.with_name(f"{art.stem}.eval-centroid-test.json").read_bytes()
    assert commit["files"]["tiny/ipc2/seed0/dm.eval-centroid-test.json"] == record
    card = commit["files"]["README.md"]
    assert fake_hub.validated == [card.decode()]
    fm = front_matter(card)
    assert fm["task_categories"] == ["image-classification"]
    assert {"dataset-distillation", "ipc-2", "dm"} <= set(fm["tags"])
    assert fm["source_datasets"] == ["tiny"] and fm["viewer"] is False
    text = card.decode()
    for needle in ("https://arxiv.org/abs/2110.04181",  # DM's paper
                   'condense.load("hf://my-lab/dm-tiny/tiny/ipc2/seed0/dm.safetensors")',
                   'hf_hub_download("my-lab/dm-tiny", "tiny/ipc2/seed0/dm.safetensors", '
                   'repo_type="dataset")',
                   "safe_open", "pixels = images * std + mean",
                   "| `tiny/ipc2/seed0/dm.safetensors` | centroid-test | "
                   "nearest pixel centroid v1 | accuracy 0.8125 | k=3 |",
                   "condense run dm --dataset tiny --ipc 2"):
        assert needle in text, needle
    index = json.loads(commit["files"]["condense-index.json"])
    (entry,) = index["variants"]
    assert entry["path"] == "tiny/ipc2/seed0/dm.safetensors" and entry["num_images"] == 6
    assert entry["evaluations"][0]["metrics"] == {"accuracy": 0.8125}
    # the token went in the Authorization header and nowhere else
    writes = [r for r in fake_hub.requests if r.method == "POST"]
    assert writes and all(r.headers.get("authorization") == f"Bearer {TOKEN}" for r in writes)
    assert not any(TOKEN.encode() in data for data in commit["files"].values())
    assert sorted(p.name for p in work.iterdir()) == [f"{art.stem}.eval-centroid-test.json",
                                                       art.name]


def test_second_push_keeps_the_first_in_the_card(tmp_path, fake_hub):
    push(make_artifact(tmp_path, ipc=2), "my-lab/dm-tiny")
    second = push(make_artifact(tmp_path, ipc=3, seed=1, with_eval=False), "my-lab/dm-tiny",
                  message="add IPC 3")
    assert fake_hub.commits[-1]["summary"] == "add IPC 3"
    assert second.path_in_repo == "tiny/ipc3/seed1/dm.safetensors"
    files = fake_hub.files("my-lab/dm-tiny")
    index = json.loads(files["condense-index.json"])
    assert [v["path"] for v in index["variants"]] == ["tiny/ipc2/seed0/dm.safetensors",
                                                      "tiny/ipc3/seed1/dm.safetensors"]
    fm = front_matter(files["README.md"])
    assert {"ipc-2", "ipc-3"} <= set(fm["tags"])
    assert "accuracy 0.8125" in files["README.md"].decode()  # the first set's result is kept
    # re-pushing the same set replaces its entry instead of duplicating it
    push(tmp_path / "dm-tiny-ipc2-seed0.safetensors", "my-lab/dm-tiny")
    index = json.loads(fake_hub.files("my-lab/dm-tiny")["condense-index.json"])
    assert len(index["variants"]) == 2


def test_push_to_a_branch(tmp_path, fake_hub):
    result = push(make_artifact(tmp_path), "my-lab/dm-tiny", revision="v1")
    assert "tiny/ipc2/seed0/dm.safetensors" in fake_hub.files("my-lab/dm-tiny", "v1")
    assert "tiny/ipc2/seed0/dm.safetensors" not in fake_hub.files("my-lab/dm-tiny", "main")
    assert result.uri == "hf://my-lab/dm-tiny@v1/tiny/ipc2/seed0/dm.safetensors"
    assert "/blob/v1/" in result.url


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
    local = pull("hf://my-lab/dm-tiny/tiny/ipc2/seed0/dm.safetensors")
    assert local == snapshot / "tiny/ipc2/seed0/dm.safetensors"
    assert local.read_bytes() == art.read_bytes()
    syn = condense.load("hf://my-lab/dm-tiny/tiny/ipc2/seed0/dm.safetensors")
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

    r = runner.invoke(cli, ["push", str(art), "my-lab/dm-tiny", "--message", "first set"])
    assert r.exit_code == 0, r.output
    url = r.stdout.strip()
    assert url == "https://huggingface.co/datasets/my-lab/dm-tiny/blob/main/tiny/ipc2/seed0/dm.safetensors"
    assert "condense eval hf://my-lab/dm-tiny/tiny/ipc2/seed0/dm.safetensors" in r.stderr
    assert TOKEN not in r.output
    uploaded = fake_hub.files("my-lab/dm-tiny")
    assert uploaded["tiny/ipc2/seed0/dm.safetensors"] == art.read_bytes()
    assert "accuracy" in uploaded["README.md"].decode()

    # the same bytes, now only in the huggingface_hub cache; the network is gone
    populate_cache(hf_home, "my-lab/dm-tiny", uploaded,
                   fake_hub.repos["my-lab/dm-tiny"]["sha"]["main"])
    _http.set_client_factory(_http.default_client_factory)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    uri = "hf://my-lab/dm-tiny/tiny/ipc2/seed0/dm.safetensors"
    r = runner.invoke(cli, ["pull", uri[len("hf://"):]])
    assert r.exit_code == 0, r.output
    assert Path(r.stdout.strip()).read_bytes() == art.read_bytes()
    r = runner.invoke(cli, ["eval", uri, "--evaluator", centroid_eval, "--json", "--no-save",
                            "--no-progress"])
    assert r.exit_code == 0, r.output
    remote_result = json.loads(r.stdout)
    assert remote_result["artifact"] == uri
    for key in ("evaluator", "protocol", "settings", "metrics", "per_run"):
        assert remote_result[key] == local_result[key], key
    r = runner.invoke(cli, ["show", uri, "--json", "--no-grid"])
    assert r.exit_code == 0 and json.loads(r.stdout)["method"] == "dm"


def test_cli_errors_are_one_line(tmp_path, offline):
    runner = CliRunner()
    for args, needle in ((["pull", "not-a-repo-id"], "malformed Hub path"),
                         (["pull", "my-lab/x/a.safetensors"], "offline mode is on"),
                         (["eval", "hf://my-lab/x/a.safetensors"], "not in the Hugging Face cache"),
                         (["push", str(make_artifact(tmp_path)), "bad id"],
                          "malformed repository id")):
        r = runner.invoke(cli, args)
        assert r.exit_code == 1, (args, r.output)
        assert r.stderr.startswith("Error:") and needle in r.stderr, r.stderr
        assert r.stderr.strip().count("\n") == 0 or len(r.stderr.strip()) > 80  # rich may wrap
        assert r.stdout == ""
