"""Built-in metrics. Targets are imported only when a sweep uses them."""

from alignbench import hookimpl


@hookimpl
def alignbench_register_metrics(register):
    register("retrieval", "alignbench_plugins.metrics.retrieval:Retrieval",
             description="Caption-level image<->text Recall@K, mAP, MRR, median rank (CLIP_benchmark protocol)")
    register("alignment-error", "alignbench_plugins.metrics.alignment_error:AlignmentError",
             description="Squared distance between aligned pairs on anchors and held-out items; latent reconstruction")
    register("spectral", "alignbench_plugins.metrics.spectral:Spectral",
             description="Functional-map diagnostics: spectral distance, diagonal dominance, orthogonality, commutativity")
    register("geometry", "alignbench_plugins.metrics.geometry:Geometry",
             description="Mutual kNN, linear CKA, kNN-graph mismatch, MMD, silhouette and NMI")
    register("class-retrieval", "alignbench_plugins.metrics.retrieval:ClassRetrieval",
             description="Class-level retrieval: a hit is any item or caption of the query's class")
    register("correspondence", "alignbench_plugins.metrics.correspondence:Correspondence",
             description="Accuracy of an aligner's own matches between unpaired items, and how many it kept (fmap)")
