"""condense-mtt: expert trajectories, the trajectory-matching loss, the learned syn_lr, resume,
and the Fashion-MNIST command line end to end."""

from __future__ import annotations

import json
import os

import pytest
import torch
from click.testing import CliRunner

import condense
import condense_mtt
from condense.cli import cli
from condense.plugins import pm
from condense_mtt import experts as experts_mod

from tolerance import assert_close

if not pm.has_plugin("condense_mtt"):  # autoload is off in tests (tests/conftest.py)
    pm.register(condense_mtt, name="condense_mtt")

MODEL = "convnet-w32"  # a narrow ConvNet keeps the tiny runs fast
EXPERT = {"batch_train": 8}


@pytest.fixture(scope="module")
def expert_dir(tmp_path_factory):
    """Three experts × 4 epochs on the tiny dataset (shared by the tests that only read them).

    Trained with one intra-op thread, like the tests that compare against it bitwise: the same
    computation on the same machine (another thread count may pick other kernels)."""
    out = tmp_path_factory.mktemp("experts")
    data = condense.load_dataset("tiny")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        condense_mtt.train_experts(data, out, experts=3, epochs=4, model=MODEL, config=EXPERT,
                                   seed=5)
    finally:
        torch.set_num_threads(before)
    return out


def _plan(data, experts, ipc=2, seed=0, **overrides):
    settings = {"experts": str(experts), "model": MODEL, "syn_steps": 3, "expert_epochs": 2,
                "max_start_epoch": 2, "iterations": 4, "lr_img": 100.0, "lr_lr": 1e-4,
                "checkpoint_every": 0, **overrides}
    return condense.loop.resolve_plan("mtt", dataset=data.name, spec=data.spec, ipc=ipc,
                                      seed=seed, overrides=settings)


# -- expert files -----------------------------------------------------------------------------


def test_expert_files_round_trip(expert_dir, tiny_data, one_thread):
    files = sorted(p.name for p in expert_dir.iterdir())
    assert files == [f"expert-000{i}.safetensors" for i in range(3)]
    traj = condense_mtt.Trajectories(expert_dir)
    assert len(traj) == 3 and traj.epochs == 4
    meta = condense_mtt.read_meta(expert_dir / "expert-0001.safetensors")
    assert meta["dataset"] == "tiny" and meta["index"] == 1 and meta["seed"] == 5
    assert meta["mean"] == [0.5] and meta["std"] == [0.25] and meta["zca"] is None
    assert meta["model"] == MODEL and meta["epochs"] == 4
    assert meta["training"]["lr_teacher"] == 0.01 and meta["training"]["momentum"] == 0.0
    assert meta["training"]["weight_decay"] == 0.0 and meta["training"]["batch_train"] == 8
    assert meta["training"]["dsa_strategy"] == "color_crop_cutout_flip_scale_rotate"
    assert meta["versions"]["condense"] == condense.__version__
    assert [h["epoch"] for h in meta["history"]] == [1, 2, 3, 4]
    everything = traj.load_all(1)
    names = traj.names
    assert set(everything) == {f"epoch{e}/{n}" for e in range(5) for n in names}
    start, end = traj.load(1, (0, 4))
    assert torch.equal(start, torch.cat([everything[f"epoch0/{n}"].reshape(-1) for n in names]))
    assert torch.equal(end, torch.cat([everything[f"epoch4/{n}"].reshape(-1) for n in names]))
    assert not torch.equal(start, end)  # the expert trained
    # epoch 0 is the initialisation, drawn from (seed, index): the experts differ from each other
    assert not torch.equal(traj.load(0, (0,))[0], start)


def test_a_student_at_an_experts_parameters_is_that_expert(expert_dir, tiny_data, one_thread):
    """The flat vectors are in the network's parameter order: the student evaluated at an
    expert's snapshot computes what a module loaded with that snapshot by name computes."""
    traj = condense_mtt.Trajectories(expert_dir)
    reference = experts_mod.build_net(MODEL, tiny_data.spec)
    student = condense_mtt.FlatStudent(experts_mod.build_net(MODEL, tiny_data.spec))
    assert traj.names == student.names == [n for n, _ in reference.named_parameters()]
    snapshot = traj.load_all(2)
    reference.load_state_dict({n: snapshot[f"epoch4/{n}"] for n in traj.names})
    x = tiny_data.normalize(tiny_data.test.images)
    with torch.no_grad():
        expected = reference(x)
        for theta in (traj.load(2, (4,))[0], traj.load(2, (4,), names=student.names)[0]):
            assert torch.equal(student(theta, x), expected)
    accuracy = 100.0 * float((expected.argmax(1) == tiny_data.test.labels).float().mean())
    history = condense_mtt.read_meta(expert_dir / "expert-0002.safetensors")["history"]
    assert history[-1]["test_acc"] == pytest.approx(accuracy)  # what training measured


def test_experts_are_deterministic_and_resumable(expert_dir, tiny_data, tmp_path, monkeypatch,
                                                 one_thread):
    """Same seed: the same tensors. A crash in expert 1 leaves expert 0 finished and no file for
    expert 1; rerunning keeps expert 0 and retrains 1 to the uninterrupted result."""
    real_train = experts_mod._train_one
    calls = []

    def crash_on_second(*args, **kwargs):
        calls.append(args[6])  # the expert's index
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_train(*args, **kwargs)

    monkeypatch.setattr(experts_mod, "_train_one", crash_on_second)
    with pytest.raises(KeyboardInterrupt):
        condense_mtt.train_experts(tiny_data, tmp_path, experts=2, epochs=4, model=MODEL,
                                   config=EXPERT, seed=5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["expert-0000.safetensors"]
    monkeypatch.setattr(experts_mod, "_train_one", real_train)
    events = []
    condense_mtt.train_experts(tiny_data, tmp_path, experts=2, epochs=4, model=MODEL,
                               config=EXPERT, seed=5, progress=events.append)
    done = [e.info for e in events if e.task == "expert-done"]
    assert [d["skipped"] for d in done] == [True, False]
    ours, ref = condense_mtt.Trajectories(tmp_path), condense_mtt.Trajectories(expert_dir)
    for i in range(2):
        a, b = ours.load_all(i), ref.load_all(i)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # other settings into the same folder: refused, naming what differs
    with pytest.raises(condense.ConfigError, match=r"training\.lr_teacher: 0\.01 there, 0\.02 now"):
        condense_mtt.train_experts(tiny_data, tmp_path, experts=2, epochs=4, model=MODEL,
                                   config={**EXPERT, "lr_teacher": 0.02}, seed=5)


def test_mismatched_run_is_refused_with_the_key_values_and_fix(expert_dir, tiny_data, tiny_rgb):
    traj = condense_mtt.Trajectories(expert_dir)
    with pytest.raises(condense.ConfigError) as err:
        traj.check_run(tiny_rgb, MODEL)
    msg = str(err.value)
    assert "dataset is 'tiny' there but 'tiny-rgb' here" in msg and "condense experts" in msg
    with pytest.raises(condense.ConfigError) as err:
        traj.check_run(tiny_data.prepared("cpu", zca_eps=0.1), MODEL)
    assert "zca is off there but on here" in str(err.value) and "--set zca" in str(err.value)
    with pytest.raises(condense.ConfigError) as err:
        traj.check_run(tiny_data, "convnet")
    msg = str(err.value)
    assert "model is 'convnet-w32' there but 'convnet' here" in msg
    assert "--set model=convnet-w32" in msg and len(msg.splitlines()) == 1
    # normalisation
    changed = tiny_data.prepared("cpu")
    changed.source = type("Shifted", (type(tiny_data.source),), {"mean": (0.4,)})()
    with pytest.raises(condense.ConfigError, match=r"mean is \[0\.5\] there but \[0\.4\] here"):
        traj.check_run(changed, MODEL)
    # through the loop: the run refuses before any iteration
    with pytest.raises(condense.ConfigError, match="zca is off there but on here"):
        condense.loop.run(_plan(tiny_data, expert_dir, zca=True), tiny_data)


def test_schedule_and_folder_errors(expert_dir, tiny_data, tmp_path):
    with pytest.raises(condense.ConfigError, match="at least 5 epochs but .* has 4"):
        condense.loop.run(_plan(tiny_data, expert_dir, max_start_epoch=4, expert_epochs=2),
                          tiny_data)
    with pytest.raises(condense.ConfigError, match="batch_syn 7 is larger than the synthetic set"):
        _plan(tiny_data, expert_dir, batch_syn=7)  # refused when the plan is resolved
    with pytest.raises(condense.ConfigError, match="condense experts"):
        condense.loop.run(_plan(tiny_data, ""), tiny_data)
    with pytest.raises(condense.ConfigError, match="holds no expert"):
        condense.loop.run(_plan(tiny_data, tmp_path), tiny_data)
    (tmp_path / "expert-0000.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(condense.ConfigError, match="unreadable expert trajectory"):
        condense.loop.run(_plan(tiny_data, tmp_path), tiny_data)


# -- the loss ---------------------------------------------------------------------------------


def test_loss_is_zero_on_the_target_and_hand_computed_on_a_linear_model():
    start, target = torch.tensor([1.0, 2.0, 3.0]), torch.tensor([2.0, 0.0, 3.0])
    assert condense_mtt.trajectory_loss(target, start, target).item() == 0.0
    assert condense_mtt.trajectory_loss(start, start, target).item() == 1.0

    # logits = W x with W (2×1) starting at 0, one image x = 1 of class 0, one step at lr 0.1:
    # softmax = (½, ½), ∂CE/∂W = (p − y) x = (−½, ½), so W₁ = lr·x·(½, −½) = (0.05, −0.05).
    # Against the target (0.1, −0.1): ‖W₁ − W*‖² / ‖W₀ − W*‖² = 0.005 / 0.02 = 0.25, and
    # loss = 2(½·lr·x − 0.1)² / 0.02 gives ∂/∂lr = −5 and ∂/∂x = −0.5.
    def student(theta, x):
        return x @ theta.view(2, 1).T

    x = torch.ones(1, 1, requires_grad=True)
    lr = torch.tensor(0.1, requires_grad=True)
    end = condense_mtt.unroll(student, torch.zeros(2), x, torch.tensor([0]), lr,
                              [torch.tensor([0])])
    assert torch.allclose(end, torch.tensor([0.05, -0.05]))
    loss = condense_mtt.trajectory_loss(end, torch.zeros(2), torch.tensor([0.1, -0.1]))
    assert torch.allclose(loss, torch.tensor(0.25))
    loss.backward()
    assert torch.allclose(lr.grad, torch.tensor(-5.0))
    assert torch.allclose(x.grad, torch.tensor([[-0.5]]))


def test_second_order_gradients_through_the_fused_cpu_pooling(monkeypatch, one_thread):
    """On the CPU the ConvNet fuses ReLU + 2×2 average pooling into one autograd function; MTT
    differentiates through its backward (create_graph). Same gradients as the unfused layers."""
    import condense.networks.convnet as convnet

    spec = condense.DataSpec(3, (16, 16), 4)  # 16×16 maps: the fused path is taken
    student = condense_mtt.FlatStudent(
        experts_mod.build_net(MODEL, spec, torch.Generator().manual_seed(1)))
    start = student.flat()
    target = start + 0.01 * torch.randn(start.shape, generator=torch.Generator().manual_seed(3))
    labels = torch.arange(4).repeat_interleave(2)

    def grads():
        x = torch.randn(8, 3, 16, 16, generator=torch.Generator().manual_seed(2))
        x.requires_grad_(True)
        lr = torch.tensor(0.01, requires_grad=True)
        end = condense_mtt.unroll(student, start, x, labels, lr, [torch.arange(8)] * 3)
        condense_mtt.trajectory_loss(end, start, target).backward()
        return x.grad, lr.grad

    fused = grads()
    monkeypatch.setattr(convnet, "fusable", lambda x: False)
    plain = grads()
    assert_close(fused[0], plain[0], what="image gradients")
    assert_close(fused[1], plain[1], what="syn_lr gradient")


def test_minibatches_cover_the_set_like_distill_py():
    g = torch.Generator().manual_seed(0)
    batches = condense_mtt.syn_batches(5, 2, 4, g)
    assert [len(b) for b in batches] == [1, 2, 2, 1]  # short chunk first, then a new permutation
    assert sorted(torch.cat(batches[:3]).tolist()) == [0, 1, 2, 3, 4]
    assert [len(b) for b in condense_mtt.syn_batches(6, 6, 2, g)] == [6, 6]


def test_gradient_reaches_the_images_and_syn_lr(expert_dir, tiny_data, one_thread):
    plan = _plan(tiny_data, expert_dir, batch_syn=4)
    method = type(plan.method)(plan.method.config)
    data = tiny_data.prepared("cpu")
    method.initialize(data, ipc=2, seed=0, sampler=plan.sampler)
    syn = torch.randn(6, 1, 8, 8, requires_grad=True)
    ctx = condense.loop.LoopContext.for_plan(plan, data, syn, draw_encoder=False,
                                             dsa_strategy=data.source.dsa_strategy)
    loss = method.iteration(ctx)
    assert loss.ndim == 0 and torch.isfinite(loss) and loss.item() > 0
    assert syn.grad is not None and torch.isfinite(syn.grad).all() and syn.grad.abs().sum() > 0
    lr = method._syn_lr
    assert lr.grad is not None and torch.isfinite(lr.grad) and lr.grad.item() != 0
    assert lr.item() != 0.01  # its own SGD stepped it


def test_expert_and_start_epoch_are_keyed_by_seed_and_iteration(expert_dir, tiny_data):
    data = tiny_data.prepared("cpu")
    syn = torch.zeros(6, 1, 8, 8)

    def draws(seed):
        plan = _plan(tiny_data, expert_dir, seed=seed)
        method = type(plan.method)(plan.method.config)
        method.initialize(data, ipc=2, seed=seed, sampler=plan.sampler)
        return [method.draw(condense.loop.LoopContext.for_plan(plan, data, syn, iteration=it,
                                                              draw_encoder=False))
                for it in range(12)]

    first = draws(0)
    assert first == draws(0)  # a pure function of (seed, iteration): exact resume
    assert all(0 <= e < 3 and 0 <= s < 2 for e, s in first)  # start < max_start_epoch
    assert len(set(first)) > 1 and draws(1) != first


# -- runs: determinism, resume, artifact, evaluation ------------------------------------------


def test_same_seed_is_bitwise_equal_and_resume_is_exact(expert_dir, tiny_data, tmp_path,
                                                        one_thread):
    plan = _plan(tiny_data, expert_dir, batch_syn=4)
    a = condense.loop.run(plan, tiny_data)
    b = condense.loop.run(plan, tiny_data)
    assert torch.equal(a.images, b.images) and torch.equal(a.syn_lr, b.syn_lr)
    assert a.syn_lr.shape == () and a.syn_lr.item() != 0.01  # learned, and in the artifact
    other = condense.loop.run(_plan(tiny_data, expert_dir, batch_syn=4, seed=1), tiny_data)
    assert not torch.equal(a.images, other.images)

    ckpt = tmp_path / "run.ckpt.safetensors"
    part = condense.loop.run(plan, tiny_data, checkpoint=ckpt, stop_after=2)
    assert part.meta["iterations"] == 2 and not torch.equal(part.syn_lr, a.syn_lr)
    saved = condense.loop.load_checkpoint(ckpt, plan.to_dict())
    assert saved.iteration == 2 and saved.method_state["syn_lr"].shape == ()
    (lr_state,) = saved.method_state["lr_optimizer"]["state"].values()
    assert lr_state["momentum_buffer"].shape == ()  # syn_lr's SGD momentum is saved too
    resumed = condense.loop.run(plan, tiny_data, checkpoint=ckpt, resume=True)
    assert torch.equal(resumed.images, a.images)
    assert torch.equal(resumed.syn_lr, a.syn_lr)

    path = condense.save(a, tmp_path / "mtt.safetensors")
    back = condense.load(path)
    assert torch.equal(back.syn_lr, a.syn_lr) and back.meta["method"] == "mtt"


def test_a_diverged_run_stops_with_the_reason(expert_dir, tiny_data, one_thread):
    with pytest.raises(condense.ConfigError, match=r"mtt diverged at iteration 2: .* lower lr_img"):
        condense.loop.run(_plan(tiny_data, expert_dir, lr_img=1e38), tiny_data)


def test_evaluation_trains_with_the_learned_syn_lr(expert_dir, tiny_data, one_thread):
    syn = condense.loop.run(_plan(tiny_data, expert_dir, iterations=2), tiny_data)
    settings = {"num_eval": 1, "epochs": 2, "model": "mlp", "batch_size": 8}
    result = condense.evaluate(syn, evaluator="accuracy", settings=settings, data=tiny_data)
    assert_close(torch.tensor(result.settings["lr"]), syn.syn_lr, what="evaluation lr")
    off = condense.evaluate(syn, evaluator="accuracy", data=tiny_data,
                            settings={**settings, "use_syn_lr": False})
    assert off.settings["lr"] == 0.01


def test_presets_hold_only_what_differs_from_the_defaults():
    mtt = condense_mtt.MTT
    assert mtt.presets["cifar100-ipc1"] == {"max_start_epoch": 20, "zca": True}
    assert mtt.presets["cifar10-ipc1"]["syn_steps"] == 50
    assert mtt.presets["cifar100-ipc50"]["batch_syn"] == 125
    assert not any(k.startswith("fashion-mnist") for k in mtt.presets)  # none published
    plan = condense.loop.resolve_plan("mtt", dataset="cifar100", preset="cifar100-ipc1", ipc=1,
                                      spec=condense.DataSpec(3, (32, 32), 100))
    assert plan.loop.zca and plan.loop.lr_img == 1000.0 and plan.loop.momentum == 0.5
    assert plan.method.config.max_start_epoch == 20 and plan.loop.init == "real"


# -- the command line on Fashion-MNIST ---------------------------------------------------------


@pytest.mark.slow
def test_experts_then_mtt_then_eval_through_the_cli(fmnist_available, tmp_path, one_thread):
    if "experts" not in cli.commands:  # plugin commands were added before this plugin registered
        condense_mtt.register_commands(cli)
    runner = CliRunner()
    experts = tmp_path / "experts"
    r = runner.invoke(cli, ["experts", "--dataset", "fashion-mnist", "--experts", "2",
                            "--epochs", "2", "--set", "train_limit=20", "--set", "test_limit=200",
                            "--out", str(experts), "--device", "cpu", "--no-progress"])
    assert r.exit_code == 0, r.output
    assert r.stdout.strip() == str(experts)
    assert "expert 1 epoch 2/2" in r.stderr
    assert sorted(os.listdir(experts)) == ["expert-0000.safetensors", "expert-0001.safetensors"]
    meta = condense_mtt.read_meta(experts / "expert-0000.safetensors")
    assert meta["training"]["train_images"] == 200 and len(meta["history"]) == 2

    out = tmp_path / "mtt.safetensors"
    r = runner.invoke(cli, ["run", "mtt", "--dataset", "fashion-mnist", "--ipc", "1",
                            "--iterations", "2", "--set", f"experts={experts}",
                            "--set", "syn_steps=3", "--set", "expert_epochs=1",
                            "--set", "max_start_epoch=2", "--set", "batch_syn=5",
                            "--no-progress", "--device", "cpu", "--out", str(out)])
    assert r.exit_code == 0, r.output
    syn = condense.load(out)
    assert syn.images.shape == (10, 1, 28, 28) and syn.syn_lr is not None
    assert syn.syn_lr.item() != 0.01 and syn.meta["method_config"]["experts"] == str(experts)

    r = runner.invoke(cli, ["eval", str(out), "--evaluator", "accuracy", "--set", "num_eval=1",
                            "--set", "epochs=2", "--set", "test_limit=200", "--json",
                            "--no-progress"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["settings"]["lr"] == pytest.approx(syn.syn_lr.item())

    # a run that does not match the experts: one red line naming the key and the fix
    r = runner.invoke(cli, ["run", "mtt", "--dataset", "fashion-mnist", "--ipc", "1",
                            "--iterations", "1", "--set", f"experts={experts}",
                            "--set", "model=convnet-bn", "--no-progress", "--device", "cpu",
                            "--out", str(tmp_path / "bad.safetensors")])
    assert r.exit_code == 1
    (line,) = [ln for ln in r.stderr.splitlines() if ln.startswith("Error:")]
    assert "model is 'convnet' there but 'convnet-bn' here" in line
