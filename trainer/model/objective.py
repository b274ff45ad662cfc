"""One forward pass of pre-training: MLM + ITC + ITM on a batch (the module that DDP wraps)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from trainer.model.albef import MomentumQueue
from trainer.engine.distributed import gather_no_grad, gather_with_grad
from trainer.model.losses import distill_loss, itc_loss, itm_labels, mlm_denominator, mlm_loss, sample_hard_negatives
from trainer.masking.masker import IGNORE_INDEX
from trainer.model.posmask import PosMaskModel
from trainer.model.precision import similarity


def _take(tokens: Tensor, positions: Tensor) -> Tensor:
    """[B, L, D] tokens at flat positions [K] -> [K, D] (a gather of fixed shape)."""
    return tokens.reshape(-1, tokens.shape[-1]).index_select(0, positions)


class Pretrainer(nn.Module):
    """Wraps PosMaskModel (and, with `albef`, its momentum copy and queues); forward returns the losses.
    `mlm_mean`: how the MLM loss averages over ranks (trainer.model.losses.mlm_denominator)."""

    def __init__(self, model: PosMaskModel, mlm: bool, albef: MomentumQueue | None = None,
                 mlm_mean: str = "global") -> None:
        super().__init__()
        self.model, self.mlm, self.albef, self.mlm_mean = model, mlm, albef, mlm_mean

    def forward(self, pixels: Tensor, ids: Tensor, attention_mask: Tensor, image_ids: Tensor,
                mlm_ids: Tensor | None = None, mlm_labels: Tensor | None = None,
                alpha: float | Tensor = 0.0, hardness: float | Tensor = 1.0,
                loss_weights: Tensor | None = None, mlm_positions: Tensor | None = None) -> dict[str, Tensor]:
        """All losses of one batch. `mlm_positions`: the MLM slots, [K] flat indices into [B, L] (the masking op's
        `positions`; None: every position). `hardness`: share of ITM negatives drawn hard from the ITC similarities
        (1 = ALBEF); the others are uniform over the other images (a curriculum for tiny models).
        `loss_weights`: [3] weights of MLM, ITC and ITM in `loss` (None: 1 each; trainer.masking.loss_weights)."""
        m = self.model
        image_tokens, image_feat = m.encode_image(pixels)
        text_tokens, text_feat = m.encode_text(ids, attention_mask)
        temp = m.temperature()

        # ITC: local rows against the global batch (gathered with gradient), or ALBEF's momentum + queue.
        if self.albef is None:
            image_all, text_all = gather_with_grad(image_feat), gather_with_grad(text_feat)
            ids_all = gather_no_grad(image_ids)
            loss_itc, _, _ = itc_loss(image_feat, text_feat, image_all, text_all, image_ids, ids_all, temp)
        else:
            loss_itc = self._albef_itc(pixels, ids, attention_mask, image_ids, image_feat, text_feat, temp, alpha)

        # ITM: positives, one hard negative image per text and one hard negative text per image (local batch).
        with torch.no_grad():
            sim_i2t = similarity(image_feat, text_feat) / temp
            neg_text = sample_hard_negatives(sim_i2t, image_ids, image_ids, hardness=hardness)
            neg_image = sample_hard_negatives(sim_i2t.t(), image_ids, image_ids, hardness=hardness)
        texts = torch.cat([text_tokens, text_tokens, text_tokens[neg_text]])
        masks = torch.cat([attention_mask, attention_mask, attention_mask[neg_text]])
        images = torch.cat([image_tokens, image_tokens[neg_image], image_tokens])
        labels = torch.cat([torch.ones_like(image_ids), itm_labels(image_ids, image_ids[neg_image]),
                            itm_labels(image_ids[neg_text], image_ids)])
        logits = m.itm_logits(m.fuse(texts, masks, images), masks)
        loss_itm = F.cross_entropy(logits, labels)
        correct = (logits.argmax(1) == labels).float()
        is_pos = labels.float()  # balanced accuracy: chance is 0.5 whatever the share of true matches
        itm_acc = 0.5 * ((correct * is_pos).sum() / is_pos.sum().clamp(min=1)
                         + (correct * (1 - is_pos)).sum() / (1 - is_pos).sum().clamp(min=1))

        # MLM on the masked text, fused with the image: the vocabulary projection runs on the K slots only
        # (trainer/masking/capacity.py; a fixed shape, no host sync), the unmasked slots have label -100.
        if self.mlm and mlm_ids is not None and mlm_labels is not None:
            if mlm_positions is None:  # every position: exact, and the most work
                mlm_positions = torch.arange(mlm_labels.numel(), device=mlm_labels.device)
            labels = mlm_labels.reshape(-1).index_select(0, mlm_positions)
            masked_tokens, _ = m.encode_text(mlm_ids, attention_mask)
            fused = m.fuse(masked_tokens, attention_mask, image_tokens)
            mlm_logits = m.mlm_logits(_take(fused, mlm_positions))
            denominator = mlm_denominator((labels != IGNORE_INDEX).sum(), self.mlm_mean)
            loss_mlm, _ = mlm_loss(mlm_logits, labels, denominator)
            if self.albef is not None:
                with torch.no_grad():
                    mm = self.albef.model_m
                    img_m, _ = mm.encode_image(pixels)
                    txt_m, _ = mm.encode_text(mlm_ids, attention_mask)
                    fused_m = _take(mm.fuse(txt_m, attention_mask, img_m), mlm_positions)
                    soft = F.softmax(mm.mlm_logits(fused_m), dim=-1)
                loss_mlm = (1 - alpha) * loss_mlm + alpha * distill_loss(mlm_logits, soft, labels, denominator)
        else:
            loss_mlm = torch.zeros((), device=ids.device)
        loss = loss_mlm + loss_itc + loss_itm if loss_weights is None else (
            loss_weights[0] * loss_mlm + loss_weights[1] * loss_itc + loss_weights[2] * loss_itm)
        return {"loss": loss, "mlm": loss_mlm.detach(), "itc": loss_itc.detach(), "itm": loss_itm.detach(),
                "itm_acc": itm_acc.detach(), "temp": temp.detach()}

    def _albef_itc(self, pixels: Tensor, ids: Tensor, attention_mask: Tensor, image_ids: Tensor,
                   image_feat: Tensor, text_feat: Tensor, temp: Tensor, alpha: float | Tensor) -> Tensor:
        """ALBEF ITC: columns are momentum features of the global batch plus the queue; soft targets."""
        assert self.albef is not None
        with torch.no_grad():
            self.albef.update(self.model)
            mm = self.albef.model_m
            _, image_feat_m = mm.encode_image(pixels)
            _, text_feat_m = mm.encode_text(ids, attention_mask)
            image_m_all, text_m_all = gather_no_grad(image_feat_m), gather_no_grad(text_feat_m)
            ids_all = gather_no_grad(image_ids)
            image_cols = torch.cat([image_m_all, self.albef.image_queue.clone()])
            text_cols = torch.cat([text_m_all, self.albef.text_queue.clone()])
            id_cols = torch.cat([ids_all, self.albef.id_queue.clone()])
            soft_i2t = F.softmax(similarity(image_feat_m, text_cols) / temp, dim=1)
            soft_t2i = F.softmax(similarity(text_feat_m, image_cols) / temp, dim=1)
        loss, _, _ = itc_loss(image_feat, text_feat, image_cols, text_cols, image_ids, id_cols, temp,
                              soft_i2t, soft_t2i, alpha)
        self.albef.enqueue(image_m_all, text_m_all, ids_all)
        return loss
