"""PyTorch anchor for segtensor's benchmarks: a plain Lloyd iteration in PyTorch, on the GPU when
one is present (the GPU machine has PyTorch; this machine does not). Same interface as
sklearn_anchor.py; prints one JSON object.

    python3 bench/torch_anchor.py DATA.f32 NROWS D INIT.f32 K ITERS [--centers-out F.f32] [--tf32]

--tf32 lets the matmul use TF32 tensor cores (torch.backends.cuda.matmul.allow_tf32), as a
PyTorch user chasing speed would; without it the matmul is full fp32.

The step is what a PyTorch user would write: distances by torch.cdist-free expansion
(‖x‖² − 2x·cᵀ + ‖c‖² as one matmul per block of rows), argmin, centre update by index_add_, all
on the device, data resident; timed with CUDA synchronisation.
"""
import json, resource, sys, time
import numpy as np
import torch

path, n, d, init_path, k, iters = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], int(sys.argv[5]), int(sys.argv[6])
dev = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
tf32 = '--tf32' in sys.argv
torch.backends.cuda.matmul.allow_tf32 = tf32
torch.backends.cudnn.allow_tf32 = tf32
X = torch.from_numpy(np.fromfile(path, dtype=np.float32).reshape(n, d)).to(dev)
C = torch.from_numpy(np.fromfile(init_path, dtype=np.float32).reshape(k, d)).to(dev)
xx = (X * X).sum(1, keepdim=True)

# Rows per distance block: the n × k matrix is built a block at a time, at most 2^29 floats
# (2 GiB), as a PyTorch user would once n × k outgrows the card (1M × 20,000 is 80 GB).
rows = max(1, min(n, (1 << 29) // k))

def step(C):
    cc = (C * C).sum(1)
    labels = torch.cat([(xx[i:i + rows] - 2 * X[i:i + rows] @ C.T + cc).argmin(1) for i in range(0, n, rows)])
    sums = torch.zeros_like(C).index_add_(0, labels, X)
    counts = torch.zeros(k, device=dev, dtype=X.dtype).index_add_(0, labels, torch.ones(n, device=dev, dtype=X.dtype))
    return torch.where(counts[:, None] > 0, sums / counts.clamp(min=1)[:, None], C)

def sync():
    if dev.type == 'cuda':
        torch.cuda.synchronize()

C = step(C)  # warm-up (kernels, allocator), not counted
C = torch.from_numpy(np.fromfile(init_path, dtype=np.float32).reshape(k, d)).to(dev)
sync()
times = []
for _ in range(iters):
    t = time.perf_counter()
    C = step(C)
    sync()
    times.append(time.perf_counter() - t)
times.sort()
if '--centers-out' in sys.argv:
    C.cpu().numpy().astype(np.float32).tofile(sys.argv[sys.argv.index('--centers-out') + 1])
print(json.dumps({
    'torch': torch.__version__,
    'device': torch.cuda.get_device_name() if dev.type == 'cuda' else 'cpu',
    'tf32': tf32,
    'msPerIter': times[len(times) // 2] * 1000,
    'msPerIterAll': [t * 1000 for t in times],
    'peakRssMiB': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
}))
