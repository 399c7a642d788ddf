"""Train the reference (danijar/dreamerv3 at e3f0224, found through DREAMERV3_REF) with its own
dreamerv3/main.py under a newer JAX than the 0.4.33 it pins, for a machine where only a newer JAX
can be had (a GPU machine whose image brings JAX for CUDA 13, say).

JAX 0.4 took jit's options positionally, `jax.jit(fn, in_shardings, out_shardings,
static_argnums, ...)`, and the reference calls it so; newer releases take them as keywords only.
That spelling is the one thing adapted here; every flag goes to main.py unchanged. Seen working
with JAX 0.11.2 on the CPU and on CUDA 13 (README.md, "Training curves").

    DREAMERV3_REF=... $REFVENV/bin/python tests/fidelity/ref_train.py --configs atari100k size1m \
        --task atari100k_road_runner --seed 0 ... --logdir DIR
"""
import runpy
import sys

import ref_lib  # checks DREAMERV3_REF before anything of the reference runs

import jax

_JIT_OPTIONS = ('in_shardings', 'out_shardings', 'static_argnums', 'static_argnames',
                'donate_argnums', 'donate_argnames')
_jit = jax.jit


def jit(fun, *options, **kwargs):
    kwargs.update(zip(_JIT_OPTIONS, options))
    return _jit(fun, **kwargs)


jax.jit = jit
main = ref_lib.REF / 'dreamerv3' / 'main.py'
sys.argv = [str(main)] + sys.argv[1:]
runpy.run_path(str(main), run_name='__main__')
