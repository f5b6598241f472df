// rsfm's C++ shim over libtorch: c10d process groups (TCPStore rendezvous, Gloo on CPU,
// NCCL on CUDA when the libtorch has it) and scoped autocast for any device type.
//
// Every function is extern "C". Tensors arrive as `at::Tensor*` (what tch's `Tensor::as_ptr`
// holds). Functions that can fail return 0 on success and otherwise a heap string with the
// error (free it with rsfm_free_error); nothing throws across the boundary.

#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef RSFM_WITH_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <chrono>
#include <cstring>
#include <string>
#include <vector>

namespace {

char* copy_error(const std::string& message) {
  char* out = static_cast<char*>(std::malloc(message.size() + 1));
  if (out != nullptr) {
    std::memcpy(out, message.c_str(), message.size() + 1);
  }
  return out;
}

template <typename F>
char* guarded(F&& body) {
  try {
    body();
    return nullptr;
  } catch (const std::exception& e) {
    return copy_error(e.what());
  } catch (...) {
    return copy_error("unknown C++ exception");
  }
}

bool is_loopback(const std::string& host) {
  return host == "127.0.0.1" || host == "localhost" || host == "::1";
}

}  // namespace

struct RsfmProcessGroup;

namespace {

void allreduce_sum_in_place(RsfmProcessGroup* pg, at::Tensor& tensor);

// A sum over the ranks that autograd differentiates: the gradient of every rank's input is
// the sum of the ranks' output gradients (what synchronised batch norm's statistics need).
struct AllReduceSum : public torch::autograd::Function<AllReduceSum> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& input,
                            int64_t group) {
    ctx->saved_data["group"] = group;
    auto out = input.detach().clone();
    allreduce_sum_in_place(reinterpret_cast<RsfmProcessGroup*>(group), out);
    return out;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto group = ctx->saved_data["group"].toInt();
    auto grad = grads[0].contiguous().clone();
    allreduce_sum_in_place(reinterpret_cast<RsfmProcessGroup*>(group), grad);
    return {grad, at::Tensor()};
  }
};

}  // namespace

// One rank's view of a process group: the store it rendezvoused through and the backends.
struct RsfmProcessGroup {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::Backend> gloo;
  c10::intrusive_ptr<c10d::Backend> nccl;
  int rank = 0;
  int world = 1;

  c10d::Backend& backend_for(const at::Tensor& t) {
    if (t.is_cuda() && nccl) {
      return *nccl;
    }
    return *gloo;
  }
};

namespace {

void allreduce_sum_in_place(RsfmProcessGroup* pg, at::Tensor& tensor) {
  std::vector<at::Tensor> one{tensor};
  c10d::AllreduceOptions opts;
  opts.reduceOp = c10d::ReduceOp::SUM;
  pg->backend_for(tensor).allreduce(one, opts)->wait();
}

}  // namespace

extern "C" {

void rsfm_free_error(char* error) { std::free(error); }

// Whether NCCL was compiled into this shim.
int rsfm_has_nccl() {
#ifdef RSFM_WITH_NCCL
  return 1;
#else
  return 0;
#endif
}

// Rendezvous at host:port (rank 0 serves the store) and create the Gloo backend, plus the
// NCCL one when `with_nccl` is set and compiled in.
char* rsfm_pg_new(const char* host, int port, int rank, int world, int timeout_ms,
                  int with_nccl, RsfmProcessGroup** out) {
  return guarded([&] {
    auto timeout = std::chrono::milliseconds(timeout_ms);
    c10d::TCPStoreOptions opts;
    opts.port = static_cast<std::uint16_t>(port);
    opts.isServer = rank == 0;
    opts.numWorkers = static_cast<std::size_t>(world);
    opts.waitWorkers = true;
    opts.timeout = timeout;
    auto pg = std::make_unique<RsfmProcessGroup>();
    pg->rank = rank;
    pg->world = world;
    pg->store = c10::make_intrusive<c10d::TCPStore>(std::string(host), opts);
    auto gloo_opts = c10d::ProcessGroupGloo::Options::create(timeout);
    if (is_loopback(host)) {
      gloo_opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
    } else {
      gloo_opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    }
    auto gloo_store = c10::make_intrusive<c10d::PrefixStore>("gloo", pg->store);
    pg->gloo = c10::make_intrusive<c10d::ProcessGroupGloo>(gloo_store, rank, world, gloo_opts);
#ifdef RSFM_WITH_NCCL
    if (with_nccl != 0) {
      auto nccl_store = c10::make_intrusive<c10d::PrefixStore>("nccl", pg->store);
      auto nccl_opts = c10d::ProcessGroupNCCL::Options::create();
      nccl_opts->timeout = timeout;
      pg->nccl = c10::make_intrusive<c10d::ProcessGroupNCCL>(nccl_store, rank, world, nccl_opts);
    }
#else
    (void)with_nccl;
#endif
    *out = pg.release();
  });
}

void rsfm_pg_free(RsfmProcessGroup* pg) { delete pg; }

// Sums each tensor in place over all ranks. All collectives are started before any is
// waited on, so the buckets travel back to back.
char* rsfm_pg_allreduce_sum(RsfmProcessGroup* pg, at::Tensor** tensors, size_t n) {
  return guarded([&] {
    std::vector<c10::intrusive_ptr<c10d::Work>> works;
    works.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      std::vector<at::Tensor> one{*tensors[i]};
      c10d::AllreduceOptions opts;
      opts.reduceOp = c10d::ReduceOp::SUM;
      works.push_back(pg->backend_for(*tensors[i]).allreduce(one, opts));
    }
    for (auto& work : works) {
      work->wait();
    }
  });
}

// Overwrites each tensor with rank `root`'s copy.
char* rsfm_pg_broadcast(RsfmProcessGroup* pg, at::Tensor** tensors, size_t n, int root) {
  return guarded([&] {
    std::vector<c10::intrusive_ptr<c10d::Work>> works;
    works.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      std::vector<at::Tensor> one{*tensors[i]};
      c10d::BroadcastOptions opts;
      opts.rootRank = root;
      works.push_back(pg->backend_for(*tensors[i]).broadcast(one, opts));
    }
    for (auto& work : works) {
      work->wait();
    }
  });
}

// A new tensor holding the sum of `input` over all ranks, recorded for autograd: its
// backward pass sums the output gradients over the ranks too. Every rank must call it, and
// run the backward pass, in the same order.
char* rsfm_pg_allreduce_sum_autograd(RsfmProcessGroup* pg, at::Tensor* input, at::Tensor** out) {
  return guarded([&] {
    auto sum = AllReduceSum::apply(*input, reinterpret_cast<int64_t>(pg));
    *out = new at::Tensor(std::move(sum));
  });
}

// Returns when every rank has called it.
char* rsfm_pg_barrier(RsfmProcessGroup* pg) {
  return guarded([&] { pg->gloo->barrier()->wait(); });
}

// Enables autocast to `dtype` (a c10::ScalarType code) on `device_type` (a c10::DeviceType
// code), writing the previous state to prev_enabled / prev_dtype for rsfm_autocast_exit.
char* rsfm_autocast_enter(int device_type, int dtype, int* prev_enabled, int* prev_dtype) {
  return guarded([&] {
    auto device = static_cast<at::DeviceType>(device_type);
    TORCH_CHECK(at::autocast::is_autocast_available(device), "autocast is not available on ",
                device);
    *prev_enabled = at::autocast::is_autocast_enabled(device) ? 1 : 0;
    *prev_dtype = static_cast<int>(at::autocast::get_autocast_dtype(device));
    at::autocast::set_autocast_dtype(device, static_cast<at::ScalarType>(dtype));
    at::autocast::set_autocast_enabled(device, true);
    at::autocast::increment_nesting();
  });
}

// Restores the state saved by rsfm_autocast_enter; the outermost exit clears the cast cache.
char* rsfm_autocast_exit(int device_type, int prev_enabled, int prev_dtype) {
  return guarded([&] {
    auto device = static_cast<at::DeviceType>(device_type);
    if (at::autocast::decrement_nesting() == 0) {
      at::autocast::clear_cache();
    }
    at::autocast::set_autocast_enabled(device, prev_enabled != 0);
    at::autocast::set_autocast_dtype(device, static_cast<at::ScalarType>(prev_dtype));
  });
}

}  // extern "C"

// ---------------------------------------------------------------------------------------------
// PyTorch checkpoint files written through libtorch's own pickler and zip writer, in
// `torch.save`'s format: `data.pkl` (plain dicts, tensors as `torch._utils._rebuild_tensor_v2`
// of persistent storages) beside `data/<id>` storage records, which
// `torch.load(path, weights_only=True)` reads. (`torch::pickle_save` tags typed dicts with
// `torch.jit._pickle.restore_type_tag`, which `weights_only` refuses.)

#include <caffe2/serialize/inline_container.h>
#include <torch/csrc/jit/serialization/pickler.h>

namespace {

void write_torch_save(const std::string& path, const c10::IValue& value) {
  std::vector<char> pickle;
  std::vector<std::string> storage_ids;
  torch::jit::Pickler pickler(
      [&](const char* bytes, size_t n) { pickle.insert(pickle.end(), bytes, bytes + n); },
      /*tensor_table=*/nullptr, /*type_renamer=*/nullptr, /*memoized_class_types=*/nullptr,
      [&](const at::Tensor&) {
        storage_ids.push_back(std::to_string(storage_ids.size()));
        return storage_ids.back();
      },
      /*tag_aggregates=*/false);
  pickler.protocol();
  pickler.pushIValue(value);
  pickler.stop();
  caffe2::serialize::PyTorchStreamWriter writer(path);
  writer.writeRecord("data.pkl", pickle.data(), pickle.size());
  const auto& tensors = pickler.tensorData();
  for (size_t i = 0; i < tensors.size(); ++i) {
    auto data = torch::jit::getWriteableTensorData(tensors[i]);
    writer.writeRecord("data/" + storage_ids[i], data.data(), data.sizeInBytes());
  }
  writer.writeEndOfFile();
}

}  // namespace

extern "C" {

// Writes named tensors as a `torch.save` file: a flat dict when `group` is null, else
// {group: {name: tensor}, "meta": {key: value}} (MMEngine's checkpoint layout).
char* rsfm_pth_write(const char* path, const char* group, const char* const* names,
                     at::Tensor* const* tensors, size_t n, const char* const* meta_keys,
                     const char* const* meta_values, size_t m) {
  return guarded([&] {
    c10::Dict<std::string, at::Tensor> state;
    for (size_t i = 0; i < n; ++i) {
      state.insert(std::string(names[i]), *tensors[i]);
    }
    if (group == nullptr) {
      write_torch_save(path, state);
      return;
    }
    c10::Dict<std::string, std::string> meta;
    for (size_t i = 0; i < m; ++i) {
      meta.insert(std::string(meta_keys[i]), std::string(meta_values[i]));
    }
    c10::impl::GenericDict outer(c10::StringType::get(), c10::AnyType::get());
    outer.insert(std::string(group), state);
    outer.insert(std::string("meta"), meta);
    write_torch_save(path, outer);
  });
}

}  // extern "C"
