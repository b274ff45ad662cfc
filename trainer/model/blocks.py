"""Transformer building blocks written with `scaled_dot_product_attention` (pre-norm)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def key_padding_bias(attention_mask: Tensor, dtype: torch.dtype) -> Tensor:
    """[B, L] 1/0 mask -> additive [B, 1, 1, L] bias for SDPA (0 keep, -inf-ish drop)."""
    bias = torch.zeros(attention_mask.shape, dtype=dtype, device=attention_mask.device)
    bias = bias.masked_fill(attention_mask == 0, torch.finfo(dtype).min)
    return bias[:, None, None, :]


class Attention(nn.Module):
    """Multi-head attention; self-attention when `context` is None, else cross-attention to it."""

    def __init__(self, dim: int, heads: int, dropout: float = 0.0, context_dim: int | None = None) -> None:
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(context_dim or dim, 2 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: Tensor, context: Tensor | None = None, bias: Tensor | None = None) -> Tensor:
        b, n, d = x.shape
        context = x if context is None else context
        q = self.q(x).view(b, n, self.heads, d // self.heads).transpose(1, 2)
        k, v = self.kv(context).view(b, context.shape[1], 2, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        if bias is not None:
            bias = bias.to(q.dtype)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=self.dropout if self.training else 0.0)
        return self.out(y.transpose(1, 2).reshape(b, n, d))


class MLP(nn.Module):
    """Linear-GELU-Linear."""

    def __init__(self, dim: int, ratio: float, dropout: float) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(dim, int(dim * ratio)), nn.Linear(int(dim * ratio), dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.drop(self.fc2(F.gelu(self.fc1(x))))


class TextBlock(nn.Module):
    """Self-attention + MLP (the text encoder layer)."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, dropout: float) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn, self.mlp = Attention(dim, heads, dropout), MLP(dim, mlp_ratio, dropout)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor, bias: Tensor) -> Tensor:
        x = x + self.drop(self.attn(self.norm1(x), bias=bias))
        return x + self.mlp(self.norm2(x))


class FusionBlock(nn.Module):
    """Self-attention over text, cross-attention (text queries, image keys/values), MLP."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, dropout: float) -> None:
        super().__init__()
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.self_attn, self.cross_attn = Attention(dim, heads, dropout), Attention(dim, heads, dropout)
        self.mlp, self.drop = MLP(dim, mlp_ratio, dropout), nn.Dropout(dropout)

    def forward(self, x: Tensor, bias: Tensor, image: Tensor) -> Tensor:
        x = x + self.drop(self.self_attn(self.norm1(x), bias=bias))
        x = x + self.drop(self.cross_attn(self.norm2(x), context=image))
        return x + self.mlp(self.norm3(x))
