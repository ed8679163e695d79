"""Every head and loss against values computed by hand from its paper's formula."""

import math

import pytest
import torch

from ltspk.heads import AAMHead, CausalNormHead, CosineHead, SoftmaxHead, log_priors
from ltspk.train.losses import focal_loss

G = 1 / 32


def approx(t):
    return pytest.approx(t, rel=1e-5, abs=1e-5)


def test_softmax_and_cosine():
    h = SoftmaxHead(2, 2)
    with torch.no_grad():
        h.linear.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 2.0]]))
        h.linear.bias.copy_(torch.tensor([0.5, -1.0]))
    assert h(torch.tensor([[1.0, 1.0]])).tolist()[0] == approx([1.5, 1.0])
    c = CosineHead(2, 2, scale=10)
    with torch.no_grad():
        c.weight.copy_(torch.tensor([[2.0, 0.0], [0.0, 5.0]]))
    assert c(torch.tensor([[3.0, 4.0]])).tolist()[0] == approx([6.0, 8.0])


def test_aam_margin_by_hand():
    h = AAMHead(2, 2, margin=0.2, scale=30)
    with torch.no_grad():
        h.weight.copy_(torch.eye(2))
    x = torch.tensor([[1.0, 1.0]])  # 45 degrees from both classes
    out = h(x, torch.tensor([0])).tolist()[0]
    assert out == approx([30 * math.cos(math.pi / 4 + 0.2), 30 * math.cos(math.pi / 4)])
    assert h(x).tolist()[0] == approx([30 * math.cos(math.pi / 4)] * 2)  # no margin without labels
    # theta beyond pi - m: continues as cos(theta) - m * sin(m)
    x = torch.tensor([[-1.0, 0.0]])
    assert h(x, torch.tensor([0])).tolist()[0][0] == approx(30 * (-1.0 - math.sin(math.pi - 0.2) * 0.2))


def test_logit_adjusted_loss_and_posthoc():
    h = SoftmaxHead(2, 2, la_tau=1.5)
    with torch.no_grad():
        h.linear.weight.copy_(torch.eye(2))
        h.linear.bias.zero_()
    h.set_priors([3, 1])
    x = torch.tensor([[1.0, 2.0]])
    assert h(x, torch.tensor([0])).tolist()[0] == approx([1 + 1.5 * math.log(0.75), 2 + 1.5 * math.log(0.25)])
    assert h.inference_logits(x).tolist()[0] == approx([1.0, 2.0])
    adjusted = h.inference_logits(x, "posthoc_la", posthoc_tau=2.0).tolist()[0]
    assert adjusted == approx([1 - 2 * math.log(0.75), 2 - 2 * math.log(0.25)])
    # log(0) is guarded: a zero-count class gets log(1e-12), never -inf
    assert log_priors([2, 0]).tolist() == approx([math.log(1 + 1e-12), math.log(1e-12)])
    with pytest.raises(RuntimeError, match="needs class priors"):
        SoftmaxHead(2, 2).inference_logits(x, "posthoc_la")
    with pytest.raises(ValueError, match="3 class counts for a head of 2"):
        h.set_priors([1, 2, 3])


def test_aam_with_logit_adjustment():
    h = AAMHead(2, 2, margin=0.2, scale=30, la_tau=1.0)
    with torch.no_grad():
        h.weight.copy_(torch.eye(2))
    h.set_priors([1, 3])
    out = h(torch.tensor([[1.0, 1.0]]), torch.tensor([1])).tolist()[0]
    assert out == approx([30 * math.cos(math.pi / 4) + math.log(0.25), 30 * math.cos(math.pi / 4 + 0.2) + math.log(0.75)])


def causal_head():
    h = CausalNormHead(4, 2, num_heads=2, scale=16, gamma=G)
    with torch.no_grad():
        h.weight.copy_(torch.tensor([[1.0, 0.0, 0.0, 1.0], [0.0, 2.0, 2.0, 0.0]]))
    return h


def test_causal_norm_logits_by_hand():
    h = causal_head()
    x = torch.tensor([[3.0, 4.0, 0.0, 2.0]])  # heads: [.6, .8] and [0, 1]
    y = h(x).tolist()[0]
    assert y == approx([8 * (0.6 / (1 + G) + 1 / (1 + G)), 8 * (0.8 * 2 / (2 + G))])


def test_causal_norm_moving_average_only_in_training():
    h = causal_head()
    b1, b2 = torch.tensor([[1.0, 2, 3, 4], [3.0, 2, 1, 0]]), torch.tensor([[0.0, 0, 0, 2]])
    h.train()
    h(b1, torch.tensor([0, 1]))
    h(b2, torch.tensor([0]))
    # xbar = 0.9 * mean(b1) + mean(b2), no (1 - mu) factor
    assert h.embed_mean.tolist() == approx([1.8, 1.8, 1.8, 1.8 + 2])
    h.eval()
    h(b1, torch.tensor([0, 1]))
    h(b1)
    assert h.embed_mean.tolist() == approx([1.8, 1.8, 1.8, 3.8])


def test_tde_by_hand_and_checkpoint_roundtrip():
    h = causal_head()
    with torch.no_grad():
        h.embed_mean.copy_(torch.tensor([5.0, 0.0, 0.0, 0.5]))  # d = [1, 0], [0, 1]
    h.set_priors([1, 1])
    x = torch.tensor([[3.0, 4.0, 0.0, 2.0]])
    # alpha = 1: head 1 [.6,.8] - .6*[1,0] = [0,.8]; head 2 [0,1] - 1*[0,1] = 0
    assert h.inference_logits(x, "tde", tde_alpha=1.0).tolist()[0] == approx([0.0, 8 * 0.8 * 2 / (2 + G)])
    # alpha = 0 is the plain logits
    assert h.inference_logits(x, "tde", tde_alpha=0.0).tolist()[0] == approx(h(x).tolist()[0])
    assert h.cos_to_direction(x).tolist() == approx([(0.6 + 1.0) / 2])  # mean over heads of cos_k
    assert h.diagnostics(x)["cos_to_direction"].tolist() == approx([0.8])
    state = h.state_dict()
    assert {"embed_mean", "log_prior", "has_prior", "weight"} <= set(state)
    fresh = CausalNormHead(4, 2, num_heads=2, scale=16, gamma=G)
    fresh.load_state_dict(state)
    assert torch.allclose(fresh.inference_logits(x, "tde", tde_alpha=1.0), h.inference_logits(x, "tde", tde_alpha=1.0))
    with pytest.raises(RuntimeError, match="moving-average feature"):
        CausalNormHead(4, 2).inference_logits(x, "tde")


def test_focal_loss_by_hand():
    logits = torch.tensor([[0.0, math.log(3.0)]])  # p(class 1) = 0.75
    assert focal_loss(logits, torch.tensor([1]), gamma=2).item() == approx(0.25**2 * -math.log(0.75))
    assert focal_loss(logits, torch.tensor([1]), gamma=0).item() == approx(-math.log(0.75))


def test_heads_declare_their_variants():
    soft, cn = SoftmaxHead(4, 3), CausalNormHead(4, 3)
    assert list(soft.inference_families()) == ["posthoc_la"] and soft.embedding_variants() == {}
    assert list(cn.inference_families()) == ["posthoc_la", "tde"] and list(cn.embedding_variants()) == ["tde_embeddings"]
    for t in (*soft.inference_families().values(), *cn.inference_families().values()):
        assert t.neutral in t.grid  # validation can always choose "no adjustment"
    assert soft.classifier_weight() is soft.linear.weight and cn.classifier_weight() is cn.weight


def test_head_errors():
    with pytest.raises(ValueError, match="not divisible"):
        CausalNormHead(5, 2, num_heads=2)
    with pytest.raises(ValueError, match="no inference family 'tde'"):
        SoftmaxHead(2, 2).inference_logits(torch.zeros(1, 2), "tde")


def test_tde_embeddings_by_hand():
    from ltspk.evaluation.evaluate import tde_embeddings

    h = causal_head()
    with torch.no_grad():
        h.embed_mean.copy_(torch.tensor([5.0, 0.0, 0.0, 0.5]))  # d = [1, 0], [0, 1]
    out = tde_embeddings(h, [[3.0, 4.0, 0.0, 2.0]], alpha=1.0)
    # head 1: [.6, .8] - .6 [1, 0] = [0, .8]; head 2: [0, 1] - 1 [0, 1] = [0, 0]
    assert out.tolist()[0] == approx([0.0, 0.8, 0.0, 0.0])
    assert tde_embeddings(h, [[3.0, 4.0, 0.0, 2.0]], alpha=0.0).tolist()[0] == approx([0.6, 0.8, 0.0, 1.0])


def test_prior_flag_survives_a_checkpoint():
    h = SoftmaxHead(2, 2, la_tau=1.0)
    h.set_priors([3, 1])
    fresh = SoftmaxHead(2, 2, la_tau=1.0)
    with pytest.raises(RuntimeError, match="needs class priors"):
        fresh(torch.zeros(1, 2), torch.tensor([0]))
    fresh.load_state_dict(h.state_dict())
    assert fresh(torch.zeros(1, 2), torch.tensor([0])).shape == (1, 2)


def test_lr_tied_mu_by_hand():
    from ltspk.heads.causal_norm import lr_tied_mu
    # mu = 1 - 0.1 * min(50 lr, 1)
    assert lr_tied_mu(0.2) == approx(0.9)        # the paper's initial lr: 50 * 0.2 = 10 -> capped at 1
    assert lr_tied_mu(0.01) == approx(0.95)      # 1 - 0.1 * 0.5
    assert lr_tied_mu(0.001) == approx(0.995)    # 1 - 0.1 * 0.05
    assert lr_tied_mu(0.0) == approx(1.0)
    h = CausalNormHead(4, 2, mu="lr_tied")
    h.set_learning_rate(0.01)
    assert h.mu == approx(0.95)
    fixed = CausalNormHead(4, 2, mu=0.8)
    fixed.set_learning_rate(0.01)
    assert fixed.mu == approx(0.8)               # a fixed mu ignores the learning rate
    # the moving average uses the epoch's mu: xbar <- mu * xbar + mean(x)
    h.train()
    b = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    h(b, torch.tensor([0]))
    h(b, torch.tensor([0]))
    assert h.embed_mean.tolist() == approx([1.95, 3.9, 5.85, 7.8])
    with pytest.raises(ValueError, match="mu"):
        CausalNormHead(4, 2, mu=1.5)


def test_relu_feature_head():
    from ltspk.heads.causal_norm import alpha_rule
    torch.manual_seed(0)
    h = CausalNormHead(4, 3, num_heads=2, feature="relu", feature_dim=6)
    assert h.weight.shape == (3, 6) and h.embedding_variants() == {}
    x = torch.randn(5, 4)
    f = h.features(x)
    assert f.shape == (5, 6) and (f >= 0).all()
    assert torch.equal(f, torch.relu(x @ h.projection.weight.t() + h.projection.bias))
    h.eval()
    h(x, torch.zeros(5, dtype=torch.long))
    assert not torch.any(h.embed_mean)           # evaluation never updates the moving average
    h.train()
    logits = h(x, torch.zeros(5, dtype=torch.long))
    assert torch.allclose(h.embed_mean, f.detach().mean(0))
    logits.sum().backward()
    assert h.projection.weight.grad is not None  # the projection trains with the classifier
    assert (h.cos_to_direction(x) >= 0).all()    # non-negative features: cos to their mean >= 0
    assert torch.equal(h.classifier_input(x), h.features(x))
    assert alpha_rule(0.25) == approx(4.0) and alpha_rule(-0.02) is None
    with pytest.raises(ValueError, match="feature"):
        CausalNormHead(4, 2, feature="pooled")


def test_brain_gives_the_head_each_epochs_learning_rate():
    from types import SimpleNamespace

    import speechbrain as sb

    from ltspk.train.brain import SpeakerBrain

    head = CausalNormHead(4, 2, mu="lr_tied")
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.01)
    SpeakerBrain.on_stage_start(SimpleNamespace(optimizer=opt, head=head), sb.Stage.TRAIN, 1)
    assert head.mu == approx(0.95)
    opt.param_groups[0]["lr"] = 0.001
    SpeakerBrain.on_stage_start(SimpleNamespace(optimizer=opt, head=head), sb.Stage.VALID, 1)
    assert head.mu == approx(0.95)  # only training epochs set it
