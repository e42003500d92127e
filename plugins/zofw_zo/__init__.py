"""First-party plugin: zeroth-order gradient estimators, clipping rules, noise mechanisms and schedules."""

from zofw import hookimpl
from zofw_zo.bitfit import DPBitFit
from zofw_zo.clippers import L2Clipper, ScalarClipper
from zofw_zo.estimators import DPGD0, DPZero, DPZeroMulti, DPZOLaplace, TwoPoint
from zofw_zo.noise import DiscreteGaussianNoise, GaussianNoise, LaplaceNoise
from zofw_zo.schedules import Constant, Cosine, Linear, Stagewise


@hookimpl
def register_estimators(register):
    for estimator in (TwoPoint, DPZero, DPZeroMulti, DPZOLaplace, DPGD0, DPBitFit):
        register(estimator)


@hookimpl
def register_clippers(register):
    register(ScalarClipper)
    register(L2Clipper)


@hookimpl
def register_noise(register):
    register(GaussianNoise)
    register(LaplaceNoise)
    register(DiscreteGaussianNoise)


@hookimpl
def register_schedules(register):
    register(Constant)
    register(Linear)
    register(Cosine)
    register(Stagewise)
