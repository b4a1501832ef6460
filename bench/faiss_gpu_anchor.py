"""FAISS-GPU anchor for bench/gpu.ts: FAISS's own k-means (faiss.Clustering on a GpuIndexFlatL2)
from the given initial centroids, every row used (no subsampling), ITERS iterations. Prints one
JSON object; exits 3 when this FAISS has no GPU support (the figure is then 'not installed').

    python3 bench/faiss_gpu_anchor.py DATA.f32 NROWS D INIT.f32 K ITERS [--centers-out F.f32]

FAISS's iteration is its assignment (a GPU matmul-based flat search) and a centroid update on
the host; the time per iteration is the whole training time over ITERS, after a one-iteration
warm-up.
"""
import json, sys, time
import numpy as np

try:
    import faiss
except ImportError:
    print(json.dumps({'error': 'faiss not importable'}))
    sys.exit(3)
if not hasattr(faiss, 'StandardGpuResources') or faiss.get_num_gpus() < 1:
    print(json.dumps({'error': f'faiss {faiss.__version__} without GPU support'}))
    sys.exit(3)

path, n, d, init_path, k, iters = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], int(sys.argv[5]), int(sys.argv[6])
X = np.fromfile(path, dtype=np.float32).reshape(n, d)
init = np.fromfile(init_path, dtype=np.float32).reshape(k, d)
res = faiss.StandardGpuResources()


def train(niter):
    clus = faiss.Clustering(d, k)
    clus.niter = niter
    clus.max_points_per_centroid = n // k + 1  # every row, no subsample
    clus.min_points_per_centroid = 1
    clus.verbose = False
    faiss.copy_array_to_vector(init.ravel(), clus.centroids)  # given centroids: FAISS starts from them
    cfg = faiss.GpuIndexFlatConfig()
    cfg.device = 0
    index = faiss.GpuIndexFlatL2(res, d, cfg)
    t = time.perf_counter()
    clus.train(X, index)
    return time.perf_counter() - t, clus


train(1)  # warm-up
seconds, clus = train(iters)
if '--centers-out' in sys.argv:
    faiss.vector_to_array(clus.centroids).astype(np.float32).tofile(sys.argv[sys.argv.index('--centers-out') + 1])
print(json.dumps({'faiss': faiss.__version__, 'msPerIter': seconds * 1000 / iters, 'seconds': seconds}))
