"""The convolutional image encoder every learner here shares.

Four blocks of 3x3 convolution, batch norm, ReLU and 2x2 max pooling (the encoder of Vinyals
et al. 2016 and Snell et al. 2017): 28x28 -> 14 -> 7 -> 3 -> 1, so a `[M, 784]` batch of
drawings becomes `[M, E]` embeddings with E = `channels`.
"""

from __future__ import annotations

from torch import Tensor, nn


def conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
    )


class ConvEncoder(nn.Module):
    """Images `[..., 784]` -> embeddings `[..., E]`, E = `channels`, any leading shape.

    Batch norm uses batch statistics in training mode: the query *images* of a task then share
    statistics with its support images, which is transductive but reads no label.
    """

    def __init__(self, channels: int = 64, blocks: int = 4) -> None:
        super().__init__()
        layers = [conv_block(1, channels)] + [
            conv_block(channels, channels) for _ in range(blocks - 1)
        ]
        self.net = nn.Sequential(*layers, nn.Flatten())
        self.dim = channels * (28 >> blocks) ** 2  # 64 * 1 * 1 with the defaults

    def forward(self, images: Tensor) -> Tensor:
        leading = images.shape[:-1]
        x = images.reshape(-1, 1, 28, 28)  # [M, 1, 28, 28]
        return self.net(x).reshape(*leading, self.dim)  # [..., E]
