"""Python sides of bench/like-for-like.ts and bench/churn-epoch.ts (never a runtime dependency).

Each subcommand is one process and prints one JSON object on stdout.

  lloyd DATA.f32 N D SEQ.f32 K T OUT.f32
      scikit-learn's own Lloyd iteration (lloyd_iter_chunked_dense, all OpenMP threads) inside
      threadpool_limits(limits=1, user_api="blas"), exactly as sklearn.cluster._kmeans.
      _kmeans_single_lloyd wraps its loop, once on each of the T centroid sets in SEQ (T + 1 sets
      of K x D; step t starts from set t). One untimed pass over the sequence first, then the
      timed one. Writes the centres of the last timed step to OUT.
  converge DATA.f32 N D INIT.f32 K TOL MAX_ITER ALGORITHM OUT.f32
      KMeans(n_clusters=K, init=INIT, n_init=1, tol=TOL, max_iter=MAX_ITER, algorithm=ALGORITHM)
      .fit(X): seconds in fit, n_iter_, final centres to OUT.
  fit TOOL ARROW K MAX_ITER SEED OUT.f32
      A whole fit as a user would run it, from the Arrow file segtensor's CLI reads:
      TOOL sklearn: KMeans(n_clusters=K, n_init=1, max_iter=MAX_ITER, tol=0, init='k-means++',
      random_state=SEED); TOOL faiss: faiss.Kmeans(d, K, niter=MAX_ITER, nredo=1, seed=SEED,
      max_points_per_centroid large enough that FAISS trains on every row). Reports the seconds
      from interpreter start to the data in memory, in the fit, and the whole process so far.
  inertia DATA N D K C1.f32 [C2.f32 ...]
      For each centre file: sum over rows of the squared distance to the nearest centre, in
      float64 (nearest by a float64 GEMM expansion, the distance to it then recomputed directly,
      so no cancellation). DATA is an Arrow file (.arrow) or raw float32 (N, D ignored for Arrow).
  mlp DATA.f32 LABELS.u8 N D HIDDEN BATCH LR ALPHA EPOCHS SEED
      scikit-learn's MLPClassifier(hidden_layer_sizes=HIDDEN, solver='adam', batch_size=BATCH,
      learning_rate_init=LR, alpha=ALPHA, max_iter=EPOCHS, tol=0, n_iter_no_change=EPOCHS + 1,
      early_stopping=False, shuffle=True), timed per epoch (a stamp at each epoch's end).
"""
import json
import os
import resource
import sys
import time

T_START = time.perf_counter()  # as early as this process can take it; the parent times the exec itself

import numpy as np

sys.dont_write_bytecode = True  # no __pycache__ in bench/
here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def load_f32(path, n, d):
    return np.fromfile(path, dtype=np.float32).reshape(n, d)


def versions():
    import sklearn
    from threadpoolctl import threadpool_info
    return {
        'sklearn': sklearn.__version__,
        'numpy': np.__version__,
        'threadpools': [{'api': i.get('user_api'), 'lib': i.get('internal_api'), 'threads': i.get('num_threads')} for i in threadpool_info()],
    }


def cmd_lloyd(data, n, d, seq_path, k, steps, out):
    from threadpoolctl import threadpool_limits
    from sklearn.cluster._k_means_lloyd import lloyd_iter_chunked_dense
    from sklearn.utils._openmp_helpers import _openmp_effective_n_threads
    n, d, k, steps = int(n), int(d), int(k), int(steps)
    X = load_f32(data, n, d)
    seq = np.fromfile(seq_path, dtype=np.float32).reshape(-1, k, d)
    assert seq.shape[0] >= steps, f'{seq_path} holds {seq.shape[0]} centroid sets, {steps} wanted'
    n_threads = _openmp_effective_n_threads()
    w = np.ones(n, dtype=np.float32)
    labels = np.full(n, -1, dtype=np.int32)
    new = np.zeros((k, d), dtype=np.float32)
    wic = np.zeros(k, dtype=np.float32)
    shift = np.zeros(k, dtype=np.float32)
    ms = []
    # One context around the loop, as _kmeans_single_lloyd has it: BLAS at one thread inside
    # the OpenMP prange, so the two pools do not oversubscribe the cores.
    with threadpool_limits(limits=1, user_api='blas'):
        for timed in (False, True):
            for t in range(steps):
                centers = np.ascontiguousarray(seq[t])
                t0 = time.perf_counter()
                lloyd_iter_chunked_dense(X, w, centers, new, wic, labels, shift, n_threads)
                if timed:
                    ms.append((time.perf_counter() - t0) * 1000)
    new.tofile(out)
    return {'msAll': ms, 'nThreads': n_threads, 'peakRssMiB': peak_rss_mib(), **versions()}


def cmd_converge(data, n, d, init, k, tol, max_iter, algorithm, out):
    from sklearn.cluster import KMeans
    n, d, k = int(n), int(d), int(k)
    X = load_f32(data, n, d)
    C = np.fromfile(init, dtype=np.float32).reshape(k, d)
    km = KMeans(n_clusters=k, init=C, n_init=1, tol=float(tol), max_iter=int(max_iter), algorithm=algorithm)
    t0 = time.perf_counter()
    km.fit(X)
    s = time.perf_counter() - t0
    km.cluster_centers_.astype(np.float32).tofile(out)
    return {'seconds': s, 'nIter': int(km.n_iter_), 'inertia': float(km.inertia_), 'peakRssMiB': peak_rss_mib(), **versions()}


def cmd_fit(tool, arrow, k, max_iter, seed, out):
    from arrow_ipc import read_features
    k, max_iter, seed = int(k), int(max_iter), int(seed)
    X, _names, reader = read_features(arrow)
    t_loaded = time.perf_counter()
    res = {'reader': reader}
    if tool == 'sklearn':
        from sklearn.cluster import KMeans
        km = KMeans(n_clusters=k, n_init=1, max_iter=max_iter, tol=0, init='k-means++', random_state=seed, algorithm='lloyd')
        t0 = time.perf_counter()
        km.fit(X)
        t1 = time.perf_counter()
        C = km.cluster_centers_
        res.update(nIter=int(km.n_iter_), ownInertia=float(km.inertia_), init='k-means++ (greedy, 2 + ln k candidates)', **versions())
    elif tool == 'faiss':
        import faiss
        # FAISS trains on at most k * max_points_per_centroid rows (256 by default, a random
        # subsample beyond it): raised so that it trains on every row, as the other tools do.
        km = faiss.Kmeans(X.shape[1], k, niter=max_iter, nredo=1, seed=seed, verbose=False,
                          max_points_per_centroid=max(256, -(-X.shape[0] // k) + 1))
        t0 = time.perf_counter()
        km.train(X)
        t1 = time.perf_counter()
        C = km.centroids
        res.update(nIter=max_iter, ownInertia=float(km.obj[-1]) if len(km.obj) else None, init='random rows (FAISS)',
                   faiss=faiss.__version__, ompThreads=faiss.omp_get_max_threads(), numpy=np.__version__)
    else:
        raise SystemExit(f'fit: unknown tool {tool!r}')
    np.ascontiguousarray(C, dtype=np.float32).tofile(out)
    res.update(loadSeconds=t_loaded - T_START, fitSeconds=t1 - t0, inProcessSeconds=time.perf_counter() - T_START,
               peakRssMiB=peak_rss_mib())
    return res


def cmd_inertia(data, n, d, k, *centres):
    k = int(k)
    if data.endswith('.arrow'):
        from arrow_ipc import read_features
        X = read_features(data)[0]
    else:
        X = load_f32(data, int(n), int(d))
    d = X.shape[1]
    out = []
    for path in centres:
        C = np.fromfile(path, dtype=np.float32).reshape(k, d).astype(np.float64)
        cc = (C * C).sum(1)
        total = 0.0
        step = max(1, (1 << 25) // max(k, d))  # rows per chunk: ~256 MiB of float64 scores
        for s in range(0, X.shape[0], step):
            x = X[s:s + step].astype(np.float64)
            j = np.argmin(cc[None, :] - 2.0 * (x @ C.T), axis=1)
            diff = x - C[j]
            total += float(np.einsum('ij,ij->', diff, diff))
        out.append(total)
    return {'inertia': out}


def cmd_mlp(data, labels, n, d, hidden, batch, lr, alpha, epochs, seed):
    import warnings
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier
    n, d, epochs = int(n), int(d), int(epochs)
    X = load_f32(data, n, d)
    y = np.fromfile(labels, dtype=np.uint8)[:n]
    hs = tuple(int(h) for h in hidden.split(',') if h)
    clf = MLPClassifier(hidden_layer_sizes=hs, activation='relu', solver='adam', batch_size=int(batch),
                        learning_rate_init=float(lr), alpha=float(alpha), max_iter=epochs, tol=0.0,
                        n_iter_no_change=epochs + 1, early_stopping=False, shuffle=True, random_state=int(seed))
    stamps = []
    orig = clf._update_no_improvement_count

    def stamp(*a, **kw):  # called once at the end of every epoch of _fit_stochastic
        stamps.append(time.perf_counter())
        return orig(*a, **kw)

    clf._update_no_improvement_count = stamp
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', ConvergenceWarning)
        clf.fit(X, y)
    total = time.perf_counter() - t0
    ms = [(b - a) * 1000 for a, b in zip([t0] + stamps[:-1], stamps)]
    return {'msPerEpochAll': ms, 'fitSeconds': total, 'epochs': int(clf.n_iter_), 'lossCurve': [float(v) for v in clf.loss_curve_],
            'dtype': str(clf.coefs_[0].dtype), 'peakRssMiB': peak_rss_mib(), **versions()}


if __name__ == '__main__':
    cmd, args = sys.argv[1], sys.argv[2:]
    r = {'lloyd': cmd_lloyd, 'converge': cmd_converge, 'fit': cmd_fit, 'inertia': cmd_inertia, 'mlp': cmd_mlp}[cmd](*args)
    print(json.dumps(r))
