"""EDM latent diffusion: preconditioning and loss (edm), the network (denoiser), sampling (sampler)."""
