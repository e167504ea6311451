"""Built-in aligners. Targets are imported only when a sweep uses them."""

from alignbench import hookimpl


@hookimpl
def alignbench_register_aligners(register):
    register("lstsq", "alignbench_plugins.aligners.lstsq:LeastSquaresAligner",
             description="Least-squares linear map from x to y (the floor); ridge with alpha > 0")
    register("procrustes", "alignbench_plugins.aligners.procrustes:ProcrustesAligner",
             description="Orthogonal Procrustes after centring, scaling and PCA to a common dimension")
    register("relative", "alignbench_plugins.aligners.relative:RelativeAligner",
             description="Relative representations: cosine similarity to the anchors (Moschella et al. 2023)")
    register("fmap", "alignbench_plugins.aligners.fmap:FunctionalMapAligner",
             description="Functional-map matches + Procrustes in the ambient space (Latent Functional Maps style)")
    register("fmap-spectral", "alignbench_plugins.aligners.fmap:SpectralFunctionalMapAligner",
             description="Functional maps compared in spectral coordinates (the seed-000 paper's method)")
    register("gw-procrustes", "alignbench_plugins.aligners.gromov:GromovWassersteinAligner",
             description="Gromov-Wasserstein matching then Wasserstein-Procrustes: needs no anchors")
    register("ot-riemannian", "alignbench_plugins.aligners.ot_riemannian:OTRiemannianAligner",
             description="InfoNCE + entropic OT + log-Euclidean covariance loss on linear maps (seed 001)")
    register("ot-riemannian-contrastive", "alignbench_plugins.aligners.ot_riemannian:ContrastiveOnly",
             description="Ablation: ot-riemannian with the contrastive loss only")
    register("ot-riemannian-ot", "alignbench_plugins.aligners.ot_riemannian:OTOnly",
             description="Ablation: ot-riemannian with contrastive + OT")
    register("ot-riemannian-riem", "alignbench_plugins.aligners.ot_riemannian:RiemannianOnly",
             description="Ablation: ot-riemannian with contrastive + Riemannian")
    register("identity", "alignbench_plugins.aligners.identity:IdentityAligner",
             description="No alignment: for encoders trained into one space (CLIP), the jointly trained reference")
    register("nullspace", "alignbench_plugins.aligners.nullspace:NullSpaceAligner",
             description="Perfect-alignment null space of the stacked anchors (seed 002), k from its spectrum; whiten=true is CCA")
