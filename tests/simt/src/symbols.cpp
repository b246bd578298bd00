// Kernel names and resources for the SIMT layer.
//
// The project's kernels are `static __global__` functions, so the dynamic linker cannot name them
// (dladdr sees only exported symbols). Their names are in the executable's ELF symbol table
// (.symtab): it is read once from /proc/self/exe, its function symbols are placed at their
// run-time addresses (the load bias comes from dl_iterate_phdr), and a name is demangled when
// first asked for. g++ marks a static function with an `L` in its mangled name and nvcc does not;
// the demangled names are the same, so kernels are matched on those.
//
// Resources: what ptxas allocates for a kernel on the emulated card's architecture, from the
// kernel resource table (engine/plan/kernel_resources.h, read once from its default path), or
// what a self-test declared with set_kernel_resources.
#include <cxxabi.h>
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "engine/plan/kernel_resources.h"
#include "internal.h"
#include "simt/runtime.h"

namespace simt {
namespace {

struct SymbolTable {
  std::string strings;                               // the .strtab section
  std::unordered_map<uintptr_t, uint32_t> by_address;  // run-time address -> offset of its name
  std::map<uintptr_t, std::unique_ptr<std::string>> demangled;  // names handed out (never freed)
};

int main_program_bias(dl_phdr_info* info, size_t, void* out) {
  *static_cast<uintptr_t*>(out) = info->dlpi_addr;  // the first object listed is the executable
  return 1;
}

// Reads the executable's .symtab; an executable without one (stripped) yields an empty table.
void load_symbols(SymbolTable& t) {
  uintptr_t bias = 0;
  dl_iterate_phdr(main_program_bias, &bias);
  const int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  struct stat st{};
  if (fstat(fd, &st) != 0 || st.st_size < static_cast<off_t>(sizeof(Elf64_Ehdr))) {
    close(fd);
    return;
  }
  const size_t size = static_cast<size_t>(st.st_size);
  void* map = mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd);
  if (map == MAP_FAILED) return;
  const auto* base = static_cast<const unsigned char*>(map);
  const auto* eh = reinterpret_cast<const Elf64_Ehdr*>(base);
  const bool elf64 = std::memcmp(eh->e_ident, ELFMAG, SELFMAG) == 0 && eh->e_ident[EI_CLASS] == ELFCLASS64;
  if (elf64 && eh->e_shoff && eh->e_shoff + size_t{eh->e_shnum} * sizeof(Elf64_Shdr) <= size) {
    const auto* sections = reinterpret_cast<const Elf64_Shdr*>(base + eh->e_shoff);
    for (unsigned i = 0; i < eh->e_shnum; ++i) {
      const Elf64_Shdr& sym = sections[i];
      if (sym.sh_type != SHT_SYMTAB || sym.sh_link >= eh->e_shnum) continue;
      const Elf64_Shdr& str = sections[sym.sh_link];
      if (sym.sh_offset + sym.sh_size > size || str.sh_offset + str.sh_size > size) continue;
      t.strings.assign(reinterpret_cast<const char*>(base + str.sh_offset), str.sh_size);
      const auto* syms = reinterpret_cast<const Elf64_Sym*>(base + sym.sh_offset);
      for (size_t k = 0; k < sym.sh_size / sizeof(Elf64_Sym); ++k) {
        const Elf64_Sym& s = syms[k];
        if (ELF64_ST_TYPE(s.st_info) != STT_FUNC || s.st_value == 0 || s.st_name >= str.sh_size) continue;
        t.by_address.emplace(bias + s.st_value, s.st_name);
      }
      break;
    }
  }
  munmap(map, size);
}

struct Symbols {
  std::mutex mu;
  SymbolTable table;
  bool loaded = false;
};
Symbols& symbols() {
  static Symbols* s = new Symbols();  // never destroyed: kernels may launch during exit
  return *s;
}

struct Resources {
  std::mutex mu;
  std::map<const void*, KernelResources> declared;
  std::unique_ptr<gpt2::KernelResourceTable> table;
  // What the table says of each kernel on each architecture (absent: -1 registers), looked up once.
  std::map<std::pair<const void*, std::string>, KernelResources> found;
};
Resources& resources() {
  static Resources* r = new Resources();
  return *r;
}

// A planted fault for the launch-limit self-test to show it catches a missing check
// (GPT2_SIMT_PLANT=no-resource-check): no kernel's resources are known, so no launch is checked
// against registers or static shared memory.
bool resource_check_planted_off() { return planted("no-resource-check"); }

}  // namespace

const char* kernel_name(const void* func) {
  Symbols& s = symbols();
  std::lock_guard<std::mutex> lock(s.mu);
  if (!s.loaded) {
    load_symbols(s.table);
    s.loaded = true;
  }
  const uintptr_t a = reinterpret_cast<uintptr_t>(func);
  if (auto it = s.table.demangled.find(a); it != s.table.demangled.end()) return it->second->c_str();
  auto it = s.table.by_address.find(a);
  if (it == s.table.by_address.end()) return nullptr;
  const char* mangled = s.table.strings.c_str() + it->second;
  int status = -1;
  char* d = abi::__cxa_demangle(mangled, nullptr, nullptr, &status);
  auto name = std::make_unique<std::string>(status == 0 && d ? d : mangled);
  std::free(d);
  return s.table.demangled.emplace(a, std::move(name)).first->second->c_str();
}

void set_kernel_resources(const void* func, int registers, int static_smem) {
  Resources& r = resources();
  std::lock_guard<std::mutex> lock(r.mu);
  r.declared[func] = KernelResources{registers, static_smem};
}

bool kernel_resources(const void* func, KernelResources* out) {
  if (resource_check_planted_off()) return false;
  Resources& r = resources();
  {
    std::lock_guard<std::mutex> lock(r.mu);
    if (auto it = r.declared.find(func); it != r.declared.end()) {
      *out = it->second;
      return true;
    }
  }
  const DeviceSpec& spec = device_spec();
  const std::string arch = "sm_" + std::to_string(spec.major) + std::to_string(spec.minor);
  {
    std::lock_guard<std::mutex> lock(r.mu);
    if (auto it = r.found.find({func, arch}); it != r.found.end()) {
      *out = it->second;
      return it->second.registers >= 0;
    }
  }
  const char* name = kernel_name(func);
  std::lock_guard<std::mutex> lock(r.mu);
  KernelResources& slot = r.found[{func, arch}];
  slot.registers = -1;
  if (!name) return false;
  if (!r.table) {
    const std::string path = gpt2::default_kernel_resources_path();
    try {
      r.table = std::make_unique<gpt2::KernelResourceTable>(gpt2::load_kernel_resources(path));
    } catch (const std::exception& e) {
      std::fprintf(stderr, "simt: cannot check launches against ptxas's resources: %s\n", e.what());
      std::exit(1);
    }
  }
  const gpt2::KernelResources* k = r.table->find(name, arch);
  if (!k) return false;
  slot = KernelResources{k->registers, k->static_smem};
  *out = slot;
  return true;
}

}  // namespace simt
