"""Maximum mean discrepancy between codes and the prior N(0, I): InfoDiffusion's regulariser (README §12).

The biased estimator (diagonal terms kept) with the Gaussian kernel k(x, y) = exp(-mean_d (x_d - y_d)² / dim),
against prior draws of the codes' shape. Written here: it is four lines, and no kept library offers this
kernel's estimator on torch tensors.
"""

import torch


def gaussian_kernel(x, y):
    """n × m kernel matrix of the rows of x (n × dim) and y (m × dim)."""
    dim = x.shape[-1]
    return torch.exp(-((x.unsqueeze(1) - y.unsqueeze(0)) ** 2).mean(-1) / dim)


def mmd(x, y):
    """Biased MMD² estimate between samples x and y (rows): 0 for identical samples, > 0 when they differ."""
    return gaussian_kernel(x, x).mean() + gaussian_kernel(y, y).mean() - 2 * gaussian_kernel(x, y).mean()
