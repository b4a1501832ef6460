/**
 * The names `--method` accepts, in a module light enough for the CLI's option parsing (the
 * models load when a command runs; see ./methods.ts for what each does).
 */
export const METHODS = ['kmeans', 'minibatch', 'gmm', 'dbscan', 'agglomerative', 'bisecting', 'kprototypes'] as const;
export type Method = (typeof METHODS)[number];

/** Methods that take a number of segments (`--k`, `sweep`); DBSCAN finds its own. */
export const K_METHODS: readonly Method[] = METHODS.filter((m) => m !== 'dbscan');

export const COVARIANCES = ['full', 'tied', 'diag', 'spherical'] as const;
export type Covariance = (typeof COVARIANCES)[number];
export const LINKAGES = ['ward', 'average', 'complete'] as const;
export type Linkage = (typeof LINKAGES)[number];
export const BISECTING_STRATEGIES = ['biggest_inertia', 'largest_cluster'] as const;
export type BisectingStrategy = (typeof BISECTING_STRATEGIES)[number];
