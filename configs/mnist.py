"""MNIST (28x28x1): the base of every config. `python train.py --config=configs/mnist.py`.

Variants derive from it and change only what they name (configs/mnist_*.py); `eval_budget` is
the solver budget of the reported evaluations (`reported_eval`: configs/mnist_eval.py, mnist_aug_eval.py).
"""

import ml_collections
from ml_collections import config_dict


def get_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.name = 'mnist'
  c.seed = 0
  c.note = ''                   # what a tuning run changes, in words (--config.note=...; the variants table)

  # --- data ---------------------------------------------------------------
  c.data = ml_collections.ConfigDict()
  c.data.source = 'auto'        # auto | tfds | builtin | folder | npz
  c.data.name = 'mnist'         # TFDS dataset name (source=tfds/auto)
  c.data.path = ''              # image folder or .npz file (source=folder/npz)
  c.data.tfds_data_dir = config_dict.placeholder(str)
  c.data.image_size = 28
  c.data.channels = 1
  c.data.resize = True          # folder source: centre-crop + resize to image_size (else: error)
  c.data.crop = 'center'        # folder source: center (one square per file) | random (crops_per_image windows, no resize)
  c.data.crops_per_image = 1    # folder source with crop=random
  c.data.value_range = 'unit'   # float arrays in .npz: 'unit' = [0, 1], 'signed' = [-1, 1]
  c.data.test_size = 500        # held-out split for builtin/folder/npz sources
  c.data.val_size = 500         # validation split carved from train (tuning only)

  # --- networks -----------------------------------------------------------
  c.model = ml_collections.ConfigDict()
  c.model.latent_dim = 64       # z ~ N(0, I)
  c.model.g_width = 16          # channels of the last G block (doubling towards z)
  c.model.d_width = 32
  c.model.base_size = 7         # spatial size after G's first dense layer
  c.model.g_final = 'conv'       # conv (x2 stages, then 3x3 conv) | subpixel (last x2 straight to pixels)
  c.model.g_upsample = 'subpixel'  # subpixel (depth-to-space) | resize (nearest x2 + conv: no checkerboard)
  c.model.g_norm = 'none'        # none | pixel (per-image feature normalisation in G)
  c.model.conv_impl = 'auto'    # auto (stride1 on CPU, xla elsewhere) | stride1 | xla | matmul: same maps and parameters

  # --- GAN pre-training -----------------------------------------------------
  c.gan = ml_collections.ConfigDict()
  c.gan.steps = 4000
  c.gan.batch_size = 64
  c.gan.lr = 5e-4
  c.gan.b1 = 0.5
  c.gan.b2 = 0.99
  c.gan.r1_weight = 1.0         # R1 gradient penalty on real images
  c.gan.r1_every = 4            # lazy R1: computed every k steps (weighted by k)
  c.gan.ema_decay = 0.999       # averaged generator used everywhere after training
  c.gan.ckpt_every = 500
  c.gan.sample_every = 1000
  c.gan.log_every = 50
  c.gan.keep = 3

  # --- autoencoder pre-training ---------------------------------------------
  c.ae = ml_collections.ConfigDict()
  c.ae.kind = 'ae'              # ae | vae
  c.ae.code_dim = 32
  c.ae.code_size = 0            # 0: a global code (dense); k: a k x k map of code_dim / k**2 channels
  c.ae.width = 32
  c.ae.steps = 4000
  c.ae.batch_size = 64
  c.ae.lr = 1e-3
  c.ae.lr_schedule = 'constant'  # constant | cosine (decays to lr_final_fraction * lr at the last step)
  c.ae.lr_final_fraction = 0.0
  c.ae.kl_weight = 1e-3         # vae only
  c.ae.generated_fraction = 0.5 # share of each batch sampled from G (the method)
  c.ae.generated_scale = (1.0, 1.0)  # G's samples use z = s * N(0, I), s ~ U(lo, hi); (1, 1) = the prior
  c.ae.augment = ''             # '' | 'all' | comma list of tasks: also train on corrupted P(x)
  c.ae.augment_recon = 1.0      # weight of reconstructing x from E(P(x)) (configs/mnist_aug.py)
  c.ae.augment_weight = 0.0     # weight of mean (E(P(x)) - sg(E(x)))^2 (code consistency)
  c.ae.ckpt_every = 500
  c.ae.sample_every = 1000
  c.ae.log_every = 50
  c.ae.keep = 3

  # --- solving ----------------------------------------------------------------
  c.solve = ml_collections.ConfigDict()
  c.solve.task = 'denoise'
  c.solve.n_images = 64
  c.solve.batch_size = 256      # images per compiled call (last one padded)
  c.solve.steps = 100           # sized for a 2-core CPU; the original ran 10,000 (one image at a time)
  c.solve.lr = 0.05
  c.solve.schedule = 'constant' # constant | cosine
  c.solve.prior = 'l2'          # l2 (paper) | l1 (original code) | sphere (PULSE)
  c.solve.restarts = 2          # R optimised starts per image, best by objective
  c.solve.output = 'best'       # best (G(z*) of the best restart, the paper) | mean (mean over restarts)
  c.solve.n_init = 16           # best-of-N random latents seeding each restart (original: 1000)
  c.solve.seed = 0
  # Weight of the prior on z, per method: GAN and CSGM objectives are means over pixels, GE's over
  # code_dim values, so one lam would weigh the prior differently. lam_ge chosen on validation by the
  # perception-distortion criterion (results/mnist/NOTE.md, docs/FIDELITY.md section 3); lam_gan and
  # lam_csgm by the lambda sweep (docs/EVALUATION.md, tuning section 1).
  c.solve.lam_ge = 0.01
  c.solve.lam_gan = 0.1
  c.solve.lam_csgm = 0.1
  c.solve.lam_ge_op = 0.01      # as GE's: the same code-space objective
  # CSGM's data term for tasks with Gaussian noise (denoise, *-noisy), whose noisy image is clipped to
  # [-1, 1]: gaussian (the plain square) | censored (the likelihood of the clipped values,
  # solver.censored_square); gaussian kept on validation (results/mnist_paper/variants/val_csgm_*).
  c.solve.likelihood = 'gaussian'
  # GE's posterior sample (method ge_sample): Langevin on ||E(G(z)) - E(y)||^2 / (2 lam) + ||z||^2 / 2,
  # lam = the variance of a code value's error E(y) - E(x) (scripts/code_errors.py), lr the Langevin
  # step. lam chosen on validation by the criterion of results/mnist/NOTE.md
  # (results/mnist_paper/NOTE.md, variants/val_sample_lam*).
  c.solve.ge_sample = ml_collections.ConfigDict()
  c.solve.ge_sample.steps = 200
  # Chains per image; 'realest' returns the one the GAN's discriminator scores most real (best-of-N
  # discriminator rejection), chosen on validation over one chain (results/mnist_paper/NOTE.md,
  # variants/val_*sample_realest4; why not the lowest objective: docs/FIDELITY.md, section 6).
  c.solve.ge_sample.restarts = 4
  c.solve.ge_sample.n_init = 1
  c.solve.ge_sample.lr = 0.01
  c.solve.ge_sample.lam = 0.03
  # None: lam fixed. A count c > 0: lam estimated per image with the sample (an inverse-gamma prior
  # worth c code values at lam; solver.SolverSpec.lam_count), for corruptions whose code errors differ.
  c.solve.ge_sample.lam_count = config_dict.placeholder(float)
  # best (the chain with the lowest objective) | mean (mean of `restarts` samples) | realest (above)
  c.solve.ge_sample.output = 'realest'
  # Langevin temperature T: the chain samples exp(-U / T); 1 is the posterior, T -> 0 its mode.
  c.solve.ge_sample.temperature = 1.0
  # GE+pixels (method ge_pix, an extension; docs/FIDELITY.md section 5): ge_sample's chain with the
  # observed image as a second observation, ||E(G(z)) - E(y)||^2 + lam / pixel_var ||G(z) - y||^2;
  # pixel_var is the variance of a pixel's error on [-1, 1] (noise, or what blur / holes change),
  # chosen on validation by the criterion of results/mnist/NOTE.md (results/mnist_paper/NOTE.md,
  # variants/val_ge_pix_var*).
  c.solve.ge_pix = ml_collections.ConfigDict()
  # Its code variance, apart from ge_sample's (None: the same): the lam its pixel_var was tuned with.
  c.solve.ge_pix.lam = config_dict.placeholder(float)
  c.solve.ge_pix.lam = 0.1
  c.solve.ge_pix.pixel_var = 0.03
  # Cap on the chain's step on the pixel term, lr / (2 pixel_var) (lr lowered to match): the uncapped
  # step is unstable (docs/FIDELITY.md section 5; results/mnist_paper/variants/val_ge_pix_var0.03_uncapped).
  c.solve.ge_pix.max_pixel_step = 0.05
  c.solve.ge_pix.temperature = 1.0    # as ge_sample.temperature, for this chain
  # Chains per image and what is returned: 'best' (one posterior sample; restarts 1) | 'mean' (the mean
  # of `restarts` samples: an estimate of the posterior mean); the mean of 4 chosen on validation by the
  # same criterion (results/mnist_paper/NOTE.md, variants/val_ge_pix_mean4).
  c.solve.ge_pix.restarts = 4
  c.solve.ge_pix.output = 'mean'
  # GE's MAP on compression, which gives the code E(x) exactly (nothing for the MAP to overfit): run to
  # convergence instead of the image tasks' budget (docs/FIDELITY.md, section 2); steps, restarts and
  # lam chosen on validation (results/mnist_paper/NOTE.md, variants/val_compress_*). None: as the
  # image tasks.
  c.solve.compress = ml_collections.ConfigDict()
  c.solve.compress.steps = 1000
  c.solve.compress.restarts = 4
  c.solve.compress.lam = 0.001

  # --- corruption operators (parameters of each --task) ---------------------
  c.ops = ml_collections.ConfigDict()
  c.ops.denoise_sigma = 0.3         # additive Gaussian, on the [-1, 1] scale
  c.ops.speckle_sigma = 0.3         # multiplicative: x * (1 + sigma * n)
  c.ops.saltpepper_p = 0.1
  c.ops.blur_size = 7
  c.ops.blur_sigma = 1.5
  c.ops.motion_length = 7
  c.ops.motion_angle = 45.0
  c.ops.blur_noise_sigma = 0.0      # deblur / motionblur: Gaussian noise after the blur (task *-noisy: 0.1)
  c.ops.inpaint_mode = 'center'     # center | pixels | blocks
  c.ops.inpaint_size = 12           # centre square side (pixels)
  c.ops.inpaint_fraction = 0.5      # missing share (pixels / blocks)
  c.ops.inpaint_block = 4
  c.ops.superres_factor = 2
  c.ops.superres_filter = 'box'     # box | bicubic | gaussian
  c.ops.seed = 0

  # --- evaluation (python -m ge_jax.evaluate) --------------------------------
  c.eval = ml_collections.ConfigDict()
  c.eval.outdir = config_dict.placeholder(str)  # default results/<name>
  c.eval.record_every = 10      # solver steps between convergence points (0: off)
  c.eval.sweep_task = 'denoise-0.3'  # task of the lambda sweep ('' = none)
  c.eval.sweep_lams = (0.0, 1e-3, 1e-2, 0.1, 1.0)
  c.eval.sweep_n = 100          # validation images of the lambda sweep
  c.eval.shift_tasks = ()       # tasks run on the shift suite (ge_jax/shift.py); () = no shift suite
  c.eval.shift_n = 0            # test images of the shift suite
  c.eval.shift_methods = ('ae', 'gan', 'ge', 'ge_sample', 'ge_pix')
  # A domain's own errors beside PSNR / SSIM, in solve.py's metrics.json and the evaluation:
  # auto (rock metrics for data.source=rock) | rock (porosity / S2 / specific surface) | none.
  c.eval.domain_metrics = 'auto'
  return c


def eval_budget(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """The solver budget of the reported evaluation (results/mnist): 60 Adam steps, 1 restart, best of 16."""
  c.solve.steps = 60
  c.solve.restarts = 1
  c.solve.n_init = 16
  c.eval.sweep_lams = (0.0, 0.01, 0.1, 1.0, 10.0)
  c.eval.sweep_n = 48
  return c


def reported_eval(c: ml_collections.ConfigDict, outdir: str) -> ml_collections.ConfigDict:
  """A reported evaluation: the `eval_budget`, the shift suite on 100 test digits, and its outdir."""
  c = eval_budget(c)
  c.eval.outdir = outdir
  c.eval.shift_tasks = ('denoise-0.3', 'inpaint-center')  # the shift suite: 7 shifts x these tasks
  c.eval.shift_n = 100
  return c
