"""EdgeViT's PyTorch reference, for the tests only: no package ships it, so this is the
authors' model code, trimmed to inference.

Source: saic-fi/edgevit, src/edgevit.py at commit df3d070 ("fix interfacing with timm"),
https://github.com/saic-fi/edgevit, Apache License 2.0 (Pan et al., "EdgeViTs: Competing
Light-weight CNNs on Mobile Devices with Vision Transformers", ECCV 2022). Changes: dropout,
DropPath and the training-only arguments (drop rates, representation layer, qk_scale) are
left out (identities at inference); timm's helpers are not imported; the classes, module
names (hence the state_dict keys the authors' checkpoints use), layer order, epsilons and
the three configurations are the authors'. The weight init is PyTorch's default (the tests
replace weights anyway: reference_registry's recipe).
"""
from functools import partial

import torch
import torch.nn as nn


class Mlp(nn.Module):
    def __init__(self, in_features, hidden_features):
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_features, in_features)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class CMlp(nn.Module):
    def __init__(self, in_features, hidden_features):
        super().__init__()
        self.fc1 = nn.Conv2d(in_features, hidden_features, 1)
        self.act = nn.GELU()
        self.fc2 = nn.Conv2d(hidden_features, in_features, 1)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class GlobalSparseAttn(nn.Module):
    def __init__(self, dim, num_heads=8, qkv_bias=False, sr_ratio=1):
        super().__init__()
        self.num_heads = num_heads
        head_dim = dim // num_heads
        self.scale = head_dim ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.sr = sr_ratio
        if self.sr > 1:
            self.sampler = nn.AvgPool2d(1, sr_ratio)
            kernel_size = sr_ratio
            self.LocalProp = nn.ConvTranspose2d(dim, dim, kernel_size, stride=sr_ratio, groups=dim)
            self.norm = nn.LayerNorm(dim)
        else:
            self.sampler = nn.Identity()
            self.upsample = nn.Identity()
            self.norm = nn.Identity()

    def forward(self, x, H: int, W: int):
        B, N, C = x.shape
        if self.sr > 1.:
            x = x.transpose(1, 2).reshape(B, C, H, W)
            x = self.sampler(x)
            x = x.flatten(2).transpose(1, 2)
        qkv = self.qkv(x).reshape(B, -1, 3, self.num_heads, C // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = (q @ k.transpose(-2, -1)) * self.scale
        attn = attn.softmax(dim=-1)
        x = (attn @ v).transpose(1, 2).reshape(B, -1, C)
        if self.sr > 1:
            x = x.permute(0, 2, 1).reshape(B, C, int(H / self.sr), int(W / self.sr))
            x = self.LocalProp(x)
            x = x.reshape(B, C, -1).permute(0, 2, 1)
            x = self.norm(x)
        return self.proj(x)


class LocalAgg(nn.Module):
    def __init__(self, dim, mlp_ratio=4.):
        super().__init__()
        self.pos_embed = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)
        self.norm1 = nn.BatchNorm2d(dim)
        self.conv1 = nn.Conv2d(dim, dim, 1)
        self.conv2 = nn.Conv2d(dim, dim, 1)
        self.attn = nn.Conv2d(dim, dim, 5, padding=2, groups=dim)
        self.norm2 = nn.BatchNorm2d(dim)
        self.mlp = CMlp(in_features=dim, hidden_features=int(dim * mlp_ratio))

    def forward(self, x):
        x = x + self.pos_embed(x)
        x = x + self.conv2(self.attn(self.conv1(self.norm1(x))))
        x = x + self.mlp(self.norm2(x))
        return x


class SelfAttn(nn.Module):
    def __init__(self, dim, num_heads, mlp_ratio=4., qkv_bias=False, norm_layer=nn.LayerNorm,
                 sr_ratio=1.):
        super().__init__()
        self.pos_embed = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)
        self.norm1 = norm_layer(dim)
        self.attn = GlobalSparseAttn(dim, num_heads=num_heads, qkv_bias=qkv_bias,
                                     sr_ratio=sr_ratio)
        self.norm2 = norm_layer(dim)
        self.mlp = Mlp(in_features=dim, hidden_features=int(dim * mlp_ratio))

    def forward(self, x):
        x = x + self.pos_embed(x)
        B, N, H, W = x.shape
        x = x.flatten(2).transpose(1, 2)
        x = x + self.attn(self.norm1(x), H, W)
        x = x + self.mlp(self.norm2(x))
        x = x.transpose(1, 2).reshape(B, N, H, W)
        return x


class LGLBlock(nn.Module):
    def __init__(self, dim, num_heads, mlp_ratio=4., qkv_bias=False, norm_layer=nn.LayerNorm,
                 sr_ratio=1.):
        super().__init__()
        if sr_ratio > 1:
            self.LocalAgg = LocalAgg(dim, mlp_ratio)
        else:
            self.LocalAgg = nn.Identity()
        self.SelfAttn = SelfAttn(dim, num_heads, mlp_ratio, qkv_bias, norm_layer, sr_ratio)

    def forward(self, x):
        return self.SelfAttn(self.LocalAgg(x))


class PatchEmbed(nn.Module):
    def __init__(self, img_size=224, patch_size=16, in_chans=3, embed_dim=768):
        super().__init__()
        self.img_size = (img_size, img_size)
        self.norm = nn.LayerNorm(embed_dim)
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x):
        B, C, H, W = x.shape
        assert H == self.img_size[0] and W == self.img_size[1], \
            f"Input image size ({H}*{W}) doesn't match model ({self.img_size[0]}*{self.img_size[1]})."
        x = self.proj(x)
        B, C, H, W = x.shape
        x = x.flatten(2).transpose(1, 2)
        x = self.norm(x)
        x = x.reshape(B, H, W, -1).permute(0, 3, 1, 2).contiguous()
        return x


class EdgeVit(nn.Module):
    def __init__(self, depth=(1, 2, 5, 3), img_size=224, in_chans=3, num_classes=1000,
                 embed_dim=(48, 96, 240, 384), head_dim=64, mlp_ratio=(4.,) * 4, qkv_bias=True,
                 norm_layer=None, sr_ratios=(4, 2, 2, 1)):
        super().__init__()
        norm_layer = norm_layer or partial(nn.LayerNorm, eps=1e-6)
        self.patch_embed1 = PatchEmbed(img_size, 4, in_chans, embed_dim[0])
        self.patch_embed2 = PatchEmbed(img_size // 4, 2, embed_dim[0], embed_dim[1])
        self.patch_embed3 = PatchEmbed(img_size // 8, 2, embed_dim[1], embed_dim[2])
        self.patch_embed4 = PatchEmbed(img_size // 16, 2, embed_dim[2], embed_dim[3])
        num_heads = [dim // head_dim for dim in embed_dim]
        for s in range(4):
            setattr(self, f"blocks{s + 1}", nn.ModuleList([
                LGLBlock(embed_dim[s], num_heads[s], mlp_ratio[s], qkv_bias, norm_layer,
                         sr_ratios[s]) for _ in range(depth[s])]))
        self.norm = nn.BatchNorm2d(embed_dim[-1])
        self.head = nn.Linear(embed_dim[-1], num_classes)

    def forward_features(self, x):
        for s in range(1, 5):
            x = getattr(self, f"patch_embed{s}")(x)
            for blk in getattr(self, f"blocks{s}"):
                x = blk(x)
        return self.norm(x)

    def forward(self, x):
        x = self.forward_features(x)
        x = x.flatten(2).mean(-1)
        return self.head(x)


def edgevit_xxs(**kwargs):
    return EdgeVit(depth=[1, 1, 3, 2], embed_dim=[36, 72, 144, 288], head_dim=36,
                   mlp_ratio=[4] * 4, qkv_bias=True, norm_layer=partial(nn.LayerNorm, eps=1e-6),
                   sr_ratios=[4, 2, 2, 1], **kwargs)


def edgevit_xs(**kwargs):
    return EdgeVit(depth=[1, 1, 3, 1], embed_dim=[48, 96, 240, 384], head_dim=48,
                   mlp_ratio=[4] * 4, qkv_bias=True, norm_layer=partial(nn.LayerNorm, eps=1e-6),
                   sr_ratios=[4, 2, 2, 1], **kwargs)


def edgevit_s(**kwargs):
    return EdgeVit(depth=[1, 2, 5, 3], embed_dim=[48, 96, 240, 384], head_dim=48,
                   mlp_ratio=[4] * 4, qkv_bias=True, norm_layer=partial(nn.LayerNorm, eps=1e-6),
                   sr_ratios=[4, 2, 2, 1], **kwargs)


BUILDERS = {"edgevit_xxs": edgevit_xxs, "edgevit_xs": edgevit_xs, "edgevit_s": edgevit_s}
