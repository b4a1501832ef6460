"""scikit-learn anchor for segtensor's benchmarks (run by bench/compare.ts; never a runtime dependency).

Reads a raw little-endian float32 matrix (nRows x d) and float32 initial centroids (k x d), then
times (a) ITERS of scikit-learn's own Lloyd iteration (lloyd_iter_chunked_dense: assignment and
centre update, all OpenMP threads) from those centroids, inside threadpool_limits(limits=1,
user_api="blas") as sklearn.cluster._kmeans._kmeans_single_lloyd runs its loop (BLAS at one
thread within the OpenMP prange, so the pools do not oversubscribe the cores), reporting the
median, and (b) optionally a whole KMeans.fit with k-means++ and N_INIT restarts.
Prints one JSON object.

    /usr/bin/python3 bench/sklearn_anchor.py DATA.f32 NROWS D INIT.f32 K ITERS [--centers-out F.f32] [--fit N_INIT]
"""
import json, resource, sys, time
import numpy as np
import sklearn
from sklearn.cluster import KMeans
from threadpoolctl import threadpool_info, threadpool_limits

path, n, d, init_path, k, iters = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], int(sys.argv[5]), int(sys.argv[6])
t0 = time.perf_counter()
X = np.fromfile(path, dtype=np.float32).reshape(n, d)
load_s = time.perf_counter() - t0
C = np.fromfile(init_path, dtype=np.float32).reshape(k, d)

from sklearn.cluster._k_means_lloyd import lloyd_iter_chunked_dense
from sklearn.utils._openmp_helpers import _openmp_effective_n_threads

n_threads = _openmp_effective_n_threads()
w = np.ones(n, dtype=np.float32)
labels = np.full(n, -1, dtype=np.int32)

def lloyd_step(centers):
    # scikit-learn's own Lloyd iteration (assignment + centre update), as its KMeans.fit runs it.
    new = np.zeros_like(centers)
    wic = np.zeros(k, dtype=np.float32)
    shift = np.zeros(k, dtype=np.float32)
    lloyd_iter_chunked_dense(X, w, centers, new, wic, labels, shift, n_threads)
    return new

times = []
centers = C.copy()
with threadpool_limits(limits=1, user_api='blas'):
    lloyd_step(centers)  # warm-up
    for _ in range(iters):
        t = time.perf_counter()
        centers = lloyd_step(centers)
        times.append(time.perf_counter() - t)
times.sort()
out = {
    'sklearn': sklearn.__version__,
    'numpy': np.__version__,
    'threads': [i.get('num_threads') for i in threadpool_info()],
    'loadSeconds': load_s,
    'nThreads': n_threads,
    'msPerIter': times[len(times) // 2] * 1000,
    'msPerIterAll': [t * 1000 for t in times],
    'peakRssMiB': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
}
if '--centers-out' in sys.argv:
    centers.astype(np.float32).tofile(sys.argv[sys.argv.index('--centers-out') + 1])
if '--fit' in sys.argv:
    n_init = int(sys.argv[sys.argv.index('--fit') + 1])
    t = time.perf_counter()
    km = KMeans(n_clusters=k, n_init=n_init, random_state=0, algorithm='lloyd').fit(X)
    out['fitSeconds'] = time.perf_counter() - t
    out['fitInertia'] = float(km.inertia_)
    out['fitNIter'] = int(km.n_iter_)
print(json.dumps(out))
