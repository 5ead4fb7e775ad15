import json,sys,collections
d=collections.defaultdict(list)
for l in open(sys.argv[1]):
    r=json.loads(l)
    if r.get('goodput_kbps') is None: continue
    d[(r['rate'],r['tag'])].append((r['goodput_kbps']/r['rate'], r['sent_kbps']/r['rate'], r['iv_mean_kbps']/r['rate'], r['retrans']))
print('rate  T     rx_ratio(s)      sent_ratio(s)    iv_mean')
for (rate,tag),v in sorted(d.items()):
    print('%6d %s  %s  %s  %s' % (rate, tag, ' '.join('%.2f'%x[0] for x in v), ' '.join('%.2f'%x[1] for x in v), ' '.join('%.2f'%x[2] for x in v)))
