# Generates the real-Python pickles under data/src/testdata (run with numpy installed).
import pickle, numpy as np
data = (np.arange(2 * 3072) * 7 % 128).astype(np.uint8).reshape(2, 3072)
batch = {'batch_label': 'training batch 1 of 5', 'labels': [3, 7], 'data': data,
         'filenames': ['a_000001.png', 'b_000002.png']}
for proto in (2, 4):
    with open(f'cifar_batch_py3_p{proto}.pickle', 'wb') as f:
        pickle.dump(batch, f, protocol=proto)
small = np.arange(6, dtype=np.uint8).reshape(2, 3) * 40
with open('small_p1.pickle', 'wb') as f:
    pickle.dump({'data': small, 'labels': (1, 2)}, f, protocol=1)
with open('small_p5.pickle', 'wb') as f:
    pickle.dump({'data': small, 'labels': [1, 2]}, f, protocol=5)
with open('small_fortran_p4.pickle', 'wb') as f:
    pickle.dump({'data': np.asfortranarray(small), 'labels': [1, 2]}, f, protocol=4)
with open('small_bytes_keys_p2.pickle', 'wb') as f:
    pickle.dump({b'data': small, b'labels': [1, 2]}, f, protocol=2)
