"""rock64 with a spatial-code AE: the code is an 8x8 map of 8 channels (512 values, as rock64's dense
code), each cell describing its own 8x8 patch (config.ae.code_size, ge_jax/models.py's Encoder).

  python train.py --config=configs/rock64_spatial.py

The same networks (but the AE's code), data and prior weights as configs/rock64.py (its code errors
are in the dense code's range: results/rock64/NOTE.md). Not the config GE is evaluated with; why:
results/rock64/NOTE.md, variants/val_spatial_code_ae.
"""

from configs import rock64


def get_config():
  c = rock64.get_config()
  c.name = 'rock64_spatial'
  c.ae.code_size = 8
  # rock64's earlier steps, the ones its results were measured with (results/rock64/NOTE.md).
  c.gan.steps, c.ae.steps = 6000, 6500
  return c
