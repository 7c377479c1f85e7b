// The one libtorch call the worker needs that tch does not expose: give the calling thread a
// CUDA stream of its own (from libtorch's stream pool), so that the trials a worker trains at
// once on one GPU (--slots K) queue their kernels on separate streams instead of all on the
// default one.
//
// Through c10's device-generic interface (what c10::StreamGuard uses), so that it needs neither
// CUDA's headers nor a CUDA build of libtorch to compile: with no CUDA backend registered it
// throws, and the thread keeps its default stream.

#include <c10/core/Device.h>
#include <c10/core/Stream.h>
#include <c10/core/impl/DeviceGuardImplInterface.h>

extern "C" int sweep_use_pool_stream(int device) {
  try {
    const c10::Device cuda(c10::DeviceType::CUDA, static_cast<c10::DeviceIndex>(device));
    const auto* impl = c10::impl::getDeviceGuardImpl(c10::DeviceType::CUDA);
    if (device < 0 || static_cast<c10::DeviceIndex>(device) >= impl->deviceCount()) {
      return -1;
    }
    impl->exchangeStream(impl->getStreamFromGlobalPool(cuda, /*isHighPriority=*/false));
    return 0;
  } catch (...) {
    return -1;
  }
}
